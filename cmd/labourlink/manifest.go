package main

// labourlink batches manifest: the escort's printable manifest of a batch (一车一方案), as a
// table or (-html FILE) a self-contained HTML page for A4 paper. The rows come from the sending
// service's GetBatchManifest, which masks every phone: the CLI never sees one in full.

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"os"
	"strings"
	"time"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{
		name:    "batches manifest",
		summary: "print a batch's manifest for its escort: names, counties, masked phones, employers (-html FILE: a printable page)",
		run:     runBatchesManifest,
	})
}

func runBatchesManifest(ctx context.Context, env *cliEnv, args []string) error {
	batch, args := splitBatchArg(args)
	fs := newFlagSet("labourlink batches manifest")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	htmlPath := fs.String("html", "", "also write the manifest as a printable HTML page (A4) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if batch == "" && fs.NArg() == 1 {
		batch = fs.Arg(0)
	}
	if batch == "" {
		return fmt.Errorf("usage: labourlink batches manifest BATCH [-html FILE]")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := sendingv1.NewTransportServiceClient(cc).GetBatchManifest(ctx, &sendingv1.GetBatchManifestRequest{Name: batchName(batch)})
	if err != nil {
		return err
	}
	if *htmlPath != "" {
		if err := writeManifestHTML(*htmlPath, resp); err != nil {
			return err
		}
	}
	return out.print(env, resp, func() {
		printManifest(env.stdout, resp)
		if *htmlPath != "" {
			fmt.Fprintf(env.stdout, "\n%s\n", tr("printable manifest written to %s", *htmlPath))
		}
	})
}

// manifestHeader is the header of a manifest: label and value pairs, in order.
func manifestHeader(b *sendingv1.Batch) [][2]string {
	t := regions.Default()
	place := func(c string) string { return strings.TrimSpace(c + " " + t.Name(c)) }
	escort := b.GetEscortName()
	if c := b.GetEscortContact(); c != "" {
		escort = strings.TrimSpace(escort + " " + c)
	}
	if escort == "" {
		escort = tr("not known")
	}
	dep := b.GetPlannedDepartureTime()
	if a := b.GetActualDepartureTime(); a != nil {
		dep = a
	}
	return [][2]string{
		{localized("batch"), b.GetBatchId()},
		{localized("route"), place(b.GetOrigin()) + " → " + place(b.GetDestinationCounty())},
		{localized("mode"), modeWord(b.GetMode())},
		{localized("departure (CST)"), fmtTime(dep)},
		{localized("start"), fmtDate(b.GetStartDate())},
		{localized("escort"), escort},
		{localized("workers"), fmt.Sprintf("%d / %d", len(b.GetManifest()), b.GetSeats())},
	}
}

// manifestCells are the printed cells of one row, in the order of manifestColumns.
func manifestCells(r *sendingv1.ManifestRow) []string {
	t := regions.Default()
	employer := r.GetEmployerName()
	if c := r.GetWorkCounty(); c != "" {
		employer = strings.TrimSpace(employer + " (" + t.Name(c) + ")")
	}
	poor := ""
	if r.GetRegisteredPoor() {
		poor = tr("yes")
	}
	return []string{fmt.Sprint(r.GetSeat()), r.GetFullName(), r.GetHomeCounty() + " " + t.Name(r.GetHomeCounty()),
		r.GetMaskedPhone(), employer, poor, r.GetWorkerId()}
}

var manifestColumns = []string{"seat", "name", "home county", "phone", "employer", "poor", "worker id"}

// printManifest writes the manifest as a header and a table (CJK-width aligned).
func printManifest(w io.Writer, m *sendingv1.GetBatchManifestResponse) {
	for _, h := range manifestHeader(m.GetBatch()) {
		fmt.Fprintf(w, "%s: %s\n", h[0], h[1])
	}
	fmt.Fprintln(w)
	tb := newTable(manifestColumns...).alignRight(0)
	for _, r := range m.GetRows() {
		cells := manifestCells(r)
		row := make([]any, len(cells))
		for i, c := range cells {
			row[i] = c
		}
		tb.add(false, row...)
	}
	tb.render(w, false)
}

// manifestPage is a printable manifest: one A4 page per 30 or so rows, no external assets, a
// font stack that has Chinese glyphs on Windows, macOS and Linux.
var manifestPage = template.Must(template.New("manifest").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
@page { size: A4 portrait; margin: 15mm 12mm; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "SimSun", "WenQuanYi Micro Hei", sans-serif; font-size: 11pt; color: #000; margin: 0; }
h1 { font-size: 16pt; margin: 0 0 4mm; }
dl { display: grid; grid-template-columns: max-content auto; gap: 1mm 6mm; margin: 0 0 5mm; }
dt { font-weight: bold; }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 0.3mm solid #000; padding: 1.2mm 2mm; text-align: left; vertical-align: top; }
th { background: #eee; }
td.seat { text-align: right; width: 10mm; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
footer { margin-top: 5mm; font-size: 9pt; }
@media print { th { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<dl>{{range .Header}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>{{end}}</dl>
<table>
<thead><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if eq $i 0}} class="seat"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
<footer>{{.Footer}}</footer>
</body>
</html>
`))

// writeManifestHTML writes the printable page of m to path (created or replaced).
func writeManifestHTML(path string, m *sendingv1.GetBatchManifestResponse) error {
	lang := "en"
	if strings.HasPrefix(cliLang.String(), "zh") {
		lang = "zh-CN"
	}
	var columns []string
	for _, c := range manifestColumns {
		columns = append(columns, localized(c))
	}
	var rows [][]string
	for _, r := range m.GetRows() {
		rows = append(rows, manifestCells(r))
	}
	data := map[string]any{
		"Lang":    lang,
		"Title":   tr("Manifest of batch %s", m.GetBatch().GetBatchId()),
		"Header":  manifestHeader(m.GetBatch()),
		"Columns": columns,
		"Rows":    rows,
		"Footer":  tr("Printed %s. Phones are masked; the full numbers are in the roster.", time.Now().In(civil.Zone).Format("2006-01-02 15:04")),
	}
	var b strings.Builder
	if err := manifestPage.Execute(&b, data); err != nil {
		return fmt.Errorf("manifest page: %w", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write manifest page: %w", err)
	}
	return nil
}
