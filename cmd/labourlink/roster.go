package main

// The roster commands: `labourlink roster import FILE.csv`, `labourlink roster get NAME`,
// `labourlink roster list`.
//
// `roster import` reads the file three times, streaming each time (a roster of a million rows is
// never held in memory):
//  1. check: parse the whole file (encoding, header, CSV syntax) and hash its bytes, so that a
//     broken file sends nothing and the default import id is the content hash (re-running the
//     same file is a no-op);
//  2. send: stream the rows in chunks to RosterService.ImportWorkers with a progress bar;
//  3. rejects: if rows were rejected, merge the file's rows with ListImportRejections (both in
//     row order) into FILE.rejects.csv: the original columns plus row_number, field and reason.

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labour/sending/v1"
	"github.com/eastwest/labourlink/services/csvimport"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/occupation"
	"github.com/eastwest/labourlink/services/peers"
	"github.com/eastwest/labourlink/services/regions"
)

func init() {
	register(&command{name: "roster import", summary: "import a worker roster from a CSV file (UTF-8 or GBK, as spreadsheets save it)", run: runRosterImport})
	register(&command{name: "roster get", summary: "show one worker (identity number and phone masked unless -full)", run: runRosterGet})
	register(&command{name: "roster list", summary: "list workers as a table, with filters", run: runRosterList})
}

// Keys of the columns that are not WorkerRow fields and are ignored on import: a serial number
// and a note column, as spreadsheet templates often have, and the three columns a rejects file
// adds (dropped when a rejects file is written again).
const (
	rosterColSerial    = "serial_number"
	rosterColNote      = "note"
	rosterColRowNumber = "row_number"
	rosterColField     = "field"
	rosterColReason    = "reason"
)

// rosterColumns is the CSV layout of a roster file: key (the WorkerRow field) and the header
// names accepted for it. Header names are matched ignoring case, full-/half-width forms and
// surrounding spaces. Keep README text (notes/readme-3.md) in step.
var rosterColumns = []csvimport.Column{
	{Key: "id_number", Aliases: []string{"身份证号", "身份证号码", "公民身份号码", "证件号码", "identity_number", "id_no"}, Required: true},
	{Key: "full_name", Aliases: []string{"姓名", "name"}, Required: true},
	{Key: "phone", Aliases: []string{"手机号", "手机号码", "联系电话", "电话", "mobile"}, Required: true},
	{Key: "home_county", Aliases: []string{"户籍县", "户籍县代码", "户籍地县区代码", "县区代码", "county"}, Required: true},
	{Key: "registered_poor", Aliases: []string{"建档立卡", "是否建档立卡", "脱贫户", "poor"}},
	{Key: "occupations", Aliases: []string{"工种", "工种代码", "职业", "职业代码", "occupation"}},
	{Key: "education", Aliases: []string{"学历", "文化程度"}},
	{Key: "preferred_destinations", Aliases: []string{"意向省份", "意向务工省份", "目的地", "destinations"}},
	{Key: "available_from", Aliases: []string{"可出发日期", "可上岗日期"}},
	{Key: "health_check_passed", Aliases: []string{"体检合格", "体检是否合格"}},
	{Key: "health_check_date", Aliases: []string{"体检日期"}},
	{Key: "sex", Aliases: []string{"性别"}},
	{Key: "birth_date", Aliases: []string{"出生日期"}},
	{Key: rosterColSerial, Aliases: []string{"序号", "编号", "no."}},
	{Key: rosterColNote, Aliases: []string{"备注", "remarks", "notes"}},
	{Key: rosterColRowNumber, Aliases: []string{"行号", "原行号"}},
	{Key: rosterColField, Aliases: []string{"错误字段"}},
	{Key: rosterColReason, Aliases: []string{"错误原因", "原因"}},
}

// rosterMaxChunk is the most rows one message may carry (RosterService limit).
const rosterMaxChunk = 5000

// workerRowFrom maps a CSV row to the WorkerRow sent to the service. Cells are trimmed by
// csvimport; everything else (validation, normalisation) is the service's.
func workerRowFrom(r csvimport.Row) *sendingv1.WorkerRow {
	return &sendingv1.WorkerRow{
		RowNumber:             int64(r.Number),
		IdNumber:              r.Get("id_number"),
		FullName:              r.Get("full_name"),
		Phone:                 r.Get("phone"),
		HomeCounty:            r.Get("home_county"),
		RegisteredPoor:        r.Get("registered_poor"),
		Occupations:           r.Get("occupations"),
		Education:             r.Get("education"),
		PreferredDestinations: r.Get("preferred_destinations"),
		AvailableFrom:         r.Get("available_from"),
		HealthCheckPassed:     r.Get("health_check_passed"),
		HealthCheckDate:       r.Get("health_check_date"),
		Sex:                   r.Get("sex"),
		BirthDate:             r.Get("birth_date"),
	}
}

// rosterFileCheck is what the check pass learned about a file.
type rosterFileCheck struct {
	hash       string // hex SHA-256 of the file's bytes
	rows       int    // data rows
	unreadable int    // rows csvimport refused on their own (sent nowhere, listed in the rejects file)
	encoding   csvimport.Encoding
}

// checkRosterFile parses the whole file with the roster columns and hashes it. A file that
// cannot be read as a roster (encoding, header, CSV syntax) is an error: nothing is sent.
func checkRosterFile(path string) (rosterFileCheck, error) {
	var c rosterFileCheck
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	h := sha256.New()
	r, err := csvimport.Open(io.TeeReader(f, h), rosterColumns...)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		var rowErr *csvimport.RowError
		if errors.As(err, &rowErr) {
			c.unreadable++
			continue
		}
		if err != nil {
			return c, fmt.Errorf("%s: %w; nothing was imported", path, err)
		}
		c.rows++
	}
	if _, err := io.Copy(h, f); err != nil {
		return c, err
	}
	c.hash = hex.EncodeToString(h.Sum(nil))
	c.encoding = r.Encoding()
	return c, nil
}

func runRosterImport(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink roster import", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	importID := fs.String("import-id", "", "import id (default: derived from the file's content, so that importing the same file again changes nothing)")
	rejectsPath := fs.String("rejects", "", "where to write the rejected rows with their reasons (default FILE.rejects.csv)")
	chunk := fs.Int("chunk", 2000, fmt.Sprintf("rows per message (1 to %d)", rosterMaxChunk))
	fs.Usage = func() {
		fmt.Fprint(env.stderr, `Usage: labourlink roster import [flags] FILE.csv

Imports the workers of a CSV file (saved from Excel, WPS or LibreOffice; UTF-8 with or without
BOM, or GBK) into the sending service. The first row names the columns, in English or Chinese:
  id_number (身份证号)  full_name (姓名)  phone (手机号)  home_county (户籍县)   required
  registered_poor (建档立卡)  occupations (工种)  education (学历)
  preferred_destinations (意向省份)  available_from (可出发日期)
  health_check_passed (体检合格)  health_check_date (体检日期)  sex (性别)  birth_date (出生日期)
Columns 序号 and 备注 (serial number, note) are ignored.
Rejected rows are written with their reasons to FILE.rejects.csv: fix them there and import that
file. Importing the same file again changes nothing.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give exactly one CSV file")
	}
	if *chunk < 1 || *chunk > rosterMaxChunk {
		return fmt.Errorf("-chunk must be between 1 and %d", rosterMaxChunk)
	}
	path := fs.Arg(0)
	if *rejectsPath == "" {
		*rejectsPath = strings.TrimSuffix(path, filepath.Ext(path)) + ".rejects.csv"
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}

	fmt.Fprintf(env.stderr, "checking %s ...\n", path)
	check, err := checkRosterFile(path)
	if err != nil {
		return err
	}
	if *importID == "" {
		*importID = "csv-" + check.hash[:32]
	}
	fmt.Fprintf(env.stderr, "%d rows (%s); import id %s\n", check.rows+check.unreadable, check.encoding, *importID)

	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewRosterServiceClient(cc)

	callCtx, cancel := peers.WithTimeout(ctx)
	prior, err := client.GetImport(callCtx, &sendingv1.GetImportRequest{ImportId: *importID})
	cancel()
	var sum *commonv1.ImportSummary
	switch {
	case err == nil && prior.GetComplete():
		fmt.Fprintf(env.stdout, "This file was imported before (import id %s); nothing changed.\n", *importID)
		sum = prior.GetSummary()
	case err == nil:
		fmt.Fprintf(env.stderr, "resuming: %d rows of this import were committed before\n", prior.GetSummary().GetRowsReceived())
		fallthrough
	case status.Code(err) == codes.NotFound:
		sum, err = sendRosterFile(ctx, env, client, path, info.Size(), *importID, *chunk)
		if err != nil {
			if ctx.Err() != nil || status.Code(err) == codes.Canceled || status.Code(err) == codes.Unavailable {
				fmt.Fprintf(env.stderr, "\nThe import was interrupted. Rows already committed are kept; run the same command again to finish it.\n")
			}
			return err
		}
	default:
		return err
	}

	printImportSummary(env.stdout, sum, check.unreadable)
	if sum.GetRejected() == 0 && check.unreadable == 0 {
		return nil
	}
	n, err := writeRosterRejects(ctx, client, path, *rejectsPath, *importID)
	if err != nil {
		return fmt.Errorf("write rejected rows: %w", err)
	}
	fmt.Fprintf(env.stdout, "\n%d rejected rows, with the reason in the last columns, are in %s.\n", n, *rejectsPath)
	fmt.Fprintf(env.stdout, "Fix them there (the row_number, field and reason columns are ignored) and import that file:\n")
	fmt.Fprintf(env.stdout, "  labourlink roster import %s\n", *rejectsPath)
	return nil
}

// parseInterspersed parses flags that may come before or after the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// sendRosterFile streams the file's rows and returns the service's summary.
func sendRosterFile(ctx context.Context, env *cliEnv, client sendingv1.RosterServiceClient, path string, size int64, importID string, chunk int) (*commonv1.ImportSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := csvimport.Open(f, rosterColumns...)
	if err != nil {
		return nil, err
	}
	// No deadline: a large roster takes minutes. Ctrl-C cancels the stream without ending it
	// cleanly, so the service keeps what it committed and the import can be resumed.
	stream, err := client.ImportWorkers(ctx)
	if err != nil {
		return nil, err
	}
	bar := newProgress(env.stderr, env.interactive, "sending", size, "bytes")
	sent := 0
	rows := make([]*sendingv1.WorkerRow, 0, chunk)
	flush := func() (bool, error) {
		err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: importID, Rows: rows})
		sent += len(rows)
		rows = make([]*sendingv1.WorkerRow, 0, chunk)
		bar.Set(r.Offset(), fmt.Sprintf("%d rows sent", sent))
		if errors.Is(err, io.EOF) {
			return false, nil // the service answered early; CloseAndRecv has its reply or error
		}
		return err == nil, err
	}
	more := true
	for more {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var rowErr *csvimport.RowError
		if errors.As(err, &rowErr) {
			continue // reported in the rejects file
		}
		if err != nil {
			return nil, err // the check pass read the same file: it changed meanwhile
		}
		rows = append(rows, workerRowFrom(row))
		if len(rows) == chunk {
			if more, err = flush(); err != nil {
				return nil, err
			}
		}
	}
	if more && (len(rows) > 0 || sent == 0) {
		if _, err := flush(); err != nil {
			return nil, err
		}
	}
	if env.interactive {
		bar.Set(size, fmt.Sprintf("%d rows sent, waiting for the last commit", sent))
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	bar.Finish(fmt.Sprintf("%d rows sent and committed", sent))
	return resp.GetSummary(), nil
}

func printImportSummary(w io.Writer, s *commonv1.ImportSummary, unreadable int) {
	tb := newTable("rows", "count").alignRight(1)
	tb.add(false, "received", s.GetRowsReceived())
	tb.add(false, "created", s.GetCreated())
	tb.add(false, "updated", s.GetUpdated())
	tb.add(false, "unchanged", s.GetUnchanged())
	tb.add(s.GetRejected() > 0, "rejected", s.GetRejected())
	if unreadable > 0 {
		tb.add(true, "unreadable (not sent)", unreadable)
	}
	fmt.Fprintf(w, "Import %s:\n", s.GetImportId())
	tb.render(w, false)
	if len(s.GetRejections()) == 0 {
		return
	}
	const show = 10
	fmt.Fprintln(w, "\nFirst rejected rows:")
	rt := newTable("row", "field", "reason").alignRight(0)
	for i, rj := range s.GetRejections() {
		if i == show {
			break
		}
		rt.add(false, rj.GetRowNumber(), rj.GetField(), rj.GetReason())
	}
	rt.render(w, false)
}

// isRosterMetaColumn reports whether a header name is one of the columns a rejects file adds.
func isRosterMetaColumn(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, c := range rosterColumns {
		if c.Key != rosterColRowNumber && c.Key != rosterColField && c.Key != rosterColReason {
			continue
		}
		for _, a := range append([]string{c.Key}, c.Aliases...) {
			if n == strings.ToLower(a) {
				return true
			}
		}
	}
	return false
}

// writeRosterRejects writes the rejected rows of the import to out: the file's own columns (its
// header as it was, without earlier row_number/field/reason columns), then row_number, field and
// reason. A row rejected for several fields is one line, fields and reasons joined by "; ". Rows
// the file reader could not read are listed too. The file is UTF-8 with BOM and CRLF line ends,
// so that Excel opens it with the Chinese text intact. It returns the number of rows written.
func writeRosterRejects(ctx context.Context, client sendingv1.RosterServiceClient, in, out, importID string) (int, error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := csvimport.Open(f) // no columns: every header name is a key, to copy the cells as they are
	if err != nil {
		return 0, err
	}
	var keep []string
	for _, h := range r.Header() {
		if !isRosterMetaColumn(h) {
			keep = append(keep, h)
		}
	}

	tmp := out + ".tmp"
	o, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp)
	if _, err := o.WriteString("\ufeff"); err != nil {
		o.Close()
		return 0, err
	}
	w := csv.NewWriter(o)
	w.UseCRLF = true
	if err := w.Write(append(append([]string(nil), keep...), rosterColRowNumber, rosterColField, rosterColReason)); err != nil {
		o.Close()
		return 0, err
	}

	rejections := &rejectionPager{ctx: ctx, client: client, importID: importID}
	written := 0
	writeRow := func(cells []string, number int, fields, reasons []string) error {
		written++
		return w.Write(append(cells, fmt.Sprint(number), strings.Join(fields, "; "), strings.Join(reasons, "; ")))
	}
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var rowErr *csvimport.RowError
		if errors.As(err, &rowErr) {
			if err := writeRow(make([]string, len(keep)), rowErr.Row, []string{"(row)"}, []string{rowErr.Reason}); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			o.Close()
			return 0, err
		}
		fields, reasons, err := rejections.forRow(int64(row.Number))
		if err != nil {
			o.Close()
			return 0, err
		}
		if len(fields) == 0 {
			continue
		}
		cells := make([]string, len(keep))
		for i, h := range keep {
			cells[i] = row.Get(h)
		}
		if err := writeRow(cells, row.Number, fields, reasons); err != nil {
			o.Close()
			return 0, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		o.Close()
		return 0, err
	}
	if err := o.Close(); err != nil {
		return 0, err
	}
	return written, os.Rename(tmp, out)
}

// rejectionPager walks the rejections of an import in row order, a page at a time.
type rejectionPager struct {
	ctx      context.Context
	client   sendingv1.RosterServiceClient
	importID string
	page     []*commonv1.RowRejection
	token    string
	done     bool
}

// forRow returns the fields and reasons of the rejections of row number n (none if the row was
// not rejected). Rows must be asked for in increasing order.
func (p *rejectionPager) forRow(n int64) ([]string, []string, error) {
	var fields, reasons []string
	for {
		for len(p.page) > 0 && p.page[0].GetRowNumber() < n {
			p.page = p.page[1:]
		}
		for len(p.page) > 0 && p.page[0].GetRowNumber() == n {
			fields = append(fields, p.page[0].GetField())
			reasons = append(reasons, p.page[0].GetReason())
			p.page = p.page[1:]
		}
		if len(p.page) > 0 || p.done {
			return fields, reasons, nil
		}
		ctx, cancel := peers.WithTimeout(p.ctx)
		resp, err := p.client.ListImportRejections(ctx, &sendingv1.ListImportRejectionsRequest{ImportId: p.importID, PageSize: 10000, PageToken: p.token})
		cancel()
		if err != nil {
			return nil, nil, err
		}
		p.page, p.token = resp.GetRejections(), resp.GetNextPageToken()
		p.done = p.token == ""
	}
}

// --- get and list ---

// rosterWorkerName accepts `workers/ID` or the bare worker id.
func rosterWorkerName(s string) string {
	if strings.HasPrefix(s, "workers/") {
		return s
	}
	return "workers/" + s
}

func runRosterGet(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink roster get", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	full := fs.Bool("full", false, "show the identity number and phone in full (for this province's operators)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: labourlink roster get [flags] WORKER_ID|workers/WORKER_ID\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give one worker id")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	view := sendingv1.WorkerView_WORKER_VIEW_BASIC
	if *full {
		view = sendingv1.WorkerView_WORKER_VIEW_FULL
	}
	callCtx, cancel := peers.WithTimeout(ctx)
	defer cancel()
	resp, err := sendingv1.NewRosterServiceClient(cc).GetWorker(callCtx, &sendingv1.GetWorkerRequest{Name: rosterWorkerName(fs.Arg(0)), View: view})
	if err != nil {
		return err
	}
	printWorker(env.stdout, resp.GetWorker())
	return nil
}

func printWorker(w io.Writer, wk *sendingv1.Worker) {
	t := regions.Default()
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-20s %s\n", k, v)
		}
	}
	line("name", wk.GetName())
	line("status", rosterStatusWord(wk.GetStatus()))
	if wk.GetErased() {
		line("erased", "yes: personal data deleted")
	}
	line("identity number", wk.GetIdNumber())
	line("full name", wk.GetFullName())
	if wk.GetSex() != commonv1.Sex_SEX_UNSPECIFIED {
		line("sex", strings.ToLower(strings.TrimPrefix(wk.GetSex().String(), "SEX_")))
	}
	line("birth date", rosterDate(wk.GetBirthDate()))
	line("phone", wk.GetPhone())
	if c := wk.GetHomeCounty(); c != "" {
		line("home county", c+" "+t.Name(c))
	}
	if !wk.GetErased() {
		line("registered poor", yesNo(wk.GetRegisteredPoor()))
	}
	var occ []string
	for _, o := range wk.GetOccupations() {
		occ = append(occ, o+" "+occupation.Title(o))
	}
	line("occupations", strings.Join(occ, "; "))
	if e := wk.GetEducation(); e != sendingv1.Education_EDUCATION_UNSPECIFIED {
		line("education", strings.ToLower(strings.TrimPrefix(e.String(), "EDUCATION_")))
	}
	var dest []string
	for _, p := range wk.GetPreferredDestinations() {
		dest = append(dest, p+" "+t.Name(p))
	}
	if len(dest) == 0 && !wk.GetErased() {
		dest = []string{"any"}
	}
	line("destinations", strings.Join(dest, ", "))
	line("available from", rosterDate(wk.GetAvailableFrom()))
	if !wk.GetErased() {
		hc := yesNo(wk.GetHealthCheckPassed())
		if d := rosterDate(wk.GetHealthCheckDate()); d != "" {
			hc += " (" + d + ")"
		}
		line("health check passed", hc)
	}
	if ts := wk.GetCreateTime(); ts != nil {
		line("created", ts.AsTime().In(time.Local).Format(time.DateTime))
	}
	if ts := wk.GetUpdateTime(); ts != nil {
		line("updated", ts.AsTime().In(time.Local).Format(time.DateTime))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func rosterDate(d *commonv1.Date) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

func rosterStatusWord(s sendingv1.WorkerStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKER_STATUS_"))
}

// parseRosterStatus reads available, AVAILABLE or WORKER_STATUS_AVAILABLE.
func parseRosterStatus(s string) (sendingv1.WorkerStatus, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	u = strings.ReplaceAll(u, "-", "_")
	if !strings.HasPrefix(u, "WORKER_STATUS_") {
		u = "WORKER_STATUS_" + u
	}
	v, ok := sendingv1.WorkerStatus_value[u]
	if !ok || v == 0 {
		var names []string
		for i := 1; i < len(sendingv1.WorkerStatus_name); i++ {
			names = append(names, rosterStatusWord(sendingv1.WorkerStatus(i)))
		}
		return 0, fmt.Errorf("-status %q: use one of %s", s, strings.Join(names, ", "))
	}
	return sendingv1.WorkerStatus(v), nil
}

func runRosterList(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink roster list", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	statusFlag := fs.String("status", "", "only workers with this status (available, proposed, accepted, scheduled, departed, arrived, employed, left_job, returned_home, withdrawn)")
	county := fs.String("county", "", "only workers from this home county (6-digit code)")
	occ := fs.String("occupation", "", "only workers who can do this occupation (ISCO-08 code, such as 8212)")
	poor := fs.String("poor", "", "yes: only registered-poor workers; no: only the others")
	pageSize := fs.Int("page-size", 50, "workers to show (1 to 1000)")
	pageToken := fs.String("page-token", "", "continue a previous listing (printed at its end)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: labourlink roster list [flags]\n\nLists workers in worker-id order, identity numbers and phones masked.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *pageSize < 1 || *pageSize > 1000 {
		return errors.New("-page-size must be between 1 and 1000")
	}
	req := &sendingv1.ListWorkersRequest{HomeCounty: *county, Occupation: *occ, PageToken: *pageToken}
	if *statusFlag != "" {
		st, err := parseRosterStatus(*statusFlag)
		if err != nil {
			return err
		}
		req.Status = st
	}
	switch strings.ToLower(*poor) {
	case "":
	case "yes", "true", "1", "是":
		v := true
		req.RegisteredPoor = &v
	case "no", "false", "0", "否":
		v := false
		req.RegisteredPoor = &v
	default:
		return fmt.Errorf("-poor must be yes or no, not %q", *poor)
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewRosterServiceClient(cc)

	// A page may come back short when filters match few workers; keep reading until the page is
	// full or the roster ends.
	var workers []*sendingv1.Worker
	for len(workers) < *pageSize {
		req.PageSize = int32(*pageSize - len(workers))
		callCtx, cancel := peers.WithTimeout(ctx)
		resp, err := client.ListWorkers(callCtx, req)
		cancel()
		if err != nil {
			return err
		}
		workers = append(workers, resp.GetWorkers()...)
		req.PageToken = resp.GetNextPageToken()
		if req.PageToken == "" {
			break
		}
	}
	t := regions.Default()
	tb := newTable("worker id", "name", "sex", "born", "home county", "poor", "occupations", "status", "phone")
	for _, w := range workers {
		sex := map[commonv1.Sex]string{commonv1.Sex_SEX_MALE: "M", commonv1.Sex_SEX_FEMALE: "F"}[w.GetSex()]
		born := ""
		if b := w.GetBirthDate(); b != nil {
			born = fmt.Sprint(b.GetYear())
		}
		tb.add(false, w.GetWorkerId(), w.GetFullName(), sex, born, w.GetHomeCounty()+" "+t.Name(w.GetHomeCounty()),
			yesNo(w.GetRegisteredPoor()), strings.Join(w.GetOccupations(), ","), rosterStatusWord(w.GetStatus()), w.GetPhone())
	}
	if len(workers) == 0 {
		fmt.Fprintln(env.stdout, "no workers match")
	} else {
		tb.render(env.stdout, env.interactive)
	}
	if req.PageToken != "" {
		fmt.Fprintf(env.stdout, "\nmore: add -page-token %s\n", req.PageToken)
	}
	return nil
}
