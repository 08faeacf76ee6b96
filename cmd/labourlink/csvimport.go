package main

// The driver of the CSV import commands (`labourlink roster import FILE.csv`, `labourlink
// vacancies import FILE.csv`): a csvImport says what differs between them (columns, row type,
// service), runCSVImport does the rest.
//
// An import reads the file three times, streaming each time (a file of a million rows is never
// held in memory):
//  1. check: parse the whole file (encoding, header, CSV syntax) and hash its bytes, so that a
//     broken file sends nothing and the default import id is the content hash (re-running the
//     same file is a no-op);
//  2. send: stream the rows in chunks to the service with a progress bar, the last chunk (empty
//     if need be) marked final with the number of rows sent: only that completes the import,
//     and an import cut before it is finished by running the same command again (the service
//     skips the rows it has);
//  3. rejects: if rows were rejected, merge the file's rows with the service's rejections (both
//     in row order) into FILE.rejects.csv: the original columns plus row_number, field and
//     reason, which can be fixed and imported as it is.

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/csvimport"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/i18n"
)

// Keys of the three columns a rejects file adds; on import they are ignored, and dropped when a
// rejects file is written again.
const (
	importColRowNumber = "row_number"
	importColField     = "field"
	importColReason    = "reason"
)

// rejectsColumns are the columns a rejects file adds, with the header names accepted for them;
// every import's columns end with them.
var rejectsColumns = []csvimport.Column{
	{Key: importColRowNumber, Aliases: []string{"行号", "原行号"}},
	{Key: importColField, Aliases: []string{"错误字段"}},
	{Key: importColReason, Aliases: []string{"错误原因", "原因"}},
}

// rejectsHeader is the header of the columns a rejects file adds: their keys, or in Chinese
// their first Chinese alias (read back as the same columns).
func rejectsHeader() []string {
	if cliLang != i18n.Chinese {
		return []string{importColRowNumber, importColField, importColReason}
	}
	h := make([]string, len(rejectsColumns))
	for i, c := range rejectsColumns {
		h[i] = c.Aliases[0]
	}
	return h
}

// csvImport describes one `labourlink NAME FILE.csv` import command; R is the proto row type
// the service takes.
type csvImport[R any] struct {
	name     string      // command name, such as "roster import"
	kind     daemon.Kind // the service it talks to
	usage    string      // help text, printed before the flags
	chunk    int         // default rows per message
	maxChunk int         // the most rows one message may carry (service limit)
	columns  []csvimport.Column
	rowFrom  func(csvimport.Row) R
	// Progress notes (formats of the number of rows sent): while waiting for the service's
	// reply, and when it came.
	waitNote, doneNote string
	// waitOnTerminalOnly shows waitNote only on an interactive terminal.
	waitOnTerminalOnly bool
	// connect returns the service's side of the import over cc.
	connect func(cc grpc.ClientConnInterface) importService[R]
}

// importService is what an import needs of the service.
type importService[R any] struct {
	// prior, when set, asks for an earlier import with the same id: a complete one is not sent
	// again, an incomplete one is resumed. A NotFound error means there is none. Set, an import
	// cut by a lost connection can be resumed.
	prior func(ctx context.Context, importID string) (sum *commonv1.ImportSummary, complete bool, err error)
	// open starts the stream of one import.
	open func(ctx context.Context, importID string) (importStream[R], error)
	// listRejections, when set, reads a page of the import's rejections in row order (next
	// token "" at the end); when nil, the rejects file has the rejections the summary lists.
	listRejections func(ctx context.Context, importID, pageToken string) ([]*commonv1.RowRejection, string, error)
}

// importStream is one open import stream.
type importStream[R any] struct {
	// send sends a chunk of rows; the last chunk (possibly empty) says final, with the number of
	// rows of the whole import: without it the service never takes the import as complete.
	send         func(rows []R, final bool, totalRows int64) error
	closeAndRecv func() (*commonv1.ImportSummary, error)
}

// runCSVImport parses the command line of c and runs the import.
func runCSVImport[R any](ctx context.Context, env *cliEnv, args []string, c *csvImport[R]) error {
	fs := newFlagSet("labourlink " + c.name)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, c.kind)
	importID := fs.String("import-id", "", "import id (default: derived from the file's content, so that importing the same file again changes nothing)")
	rejectsPath := fs.String("rejects", "", "where to write the rejected rows with their reasons: a name ending in .xlsx writes a workbook (default FILE.rejects.csv, FILE.rejects.xlsx for a workbook)")
	sheet := fs.String("sheet", "", msgSheetFlag)
	chunk := fs.Int("chunk", c.chunk, fmt.Sprintf("rows per message (1 to %d)", c.maxChunk))
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprint(env.stderr, c.usage)
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New(msgNeedOneFile)
	}
	if *chunk < 1 || *chunk > c.maxChunk {
		return fmt.Errorf("-chunk must be between 1 and %d", c.maxChunk)
	}
	path := fs.Arg(0)
	file := importFile{path: path, sheet: *sheet}
	if *rejectsPath == "" {
		ext := ".rejects.csv"
		if file.workbook() {
			ext = ".rejects.xlsx"
		}
		*rejectsPath = strings.TrimSuffix(path, filepath.Ext(path)) + ext
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}

	fmt.Fprintln(env.stderr, tr("checking %s ...", path))
	check, err := checkImportFile(file, c.columns)
	if err != nil {
		return err
	}
	file.sheet = check.sheet // the sheet read, named, so that every pass reads the same one
	// An id derived from the file's content names this content only; an id the operator chose
	// may have been used for another file, which only the service can tell (it compares the rows
	// sent again under a used import id with those it has).
	derivedID := *importID == ""
	if derivedID {
		*importID = "csv-" + check.hash[:32]
		if file.workbook() {
			*importID = "xlsx-" + check.hash[:32]
		}
	}
	what := check.encoding.String()
	if file.workbook() {
		what = fmt.Sprintf(msgFileSheet, check.sheet)
	}
	fmt.Fprintln(env.stderr, tr("%d rows (%s); import id %s", check.rows+check.unreadable, what, *importID))

	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	svc := c.connect(cc)

	// notes are for the person: on stdout with the table, on stderr under -o json, where stdout
	// gets the import's summary (commonv1.ImportSummary) only.
	notes := env.stdout
	if out.json {
		notes = env.stderr
	}
	var sum *commonv1.ImportSummary
	send := true
	if svc.prior != nil {
		prior, complete, err := svc.prior(ctx, *importID)
		switch {
		case err == nil && complete && derivedID:
			fmt.Fprintln(notes, tr("This file was imported before (import id %s); nothing changed.", *importID))
			sum, send = prior, false
		case err == nil && complete:
			fmt.Fprintln(env.stderr, tr("import id %s was used before: sending the file for the service to compare with that import", *importID))
		case err == nil:
			fmt.Fprintln(env.stderr, tr("resuming: %d rows of this import were committed before", prior.GetRowsReceived()))
		case status.Code(err) == codes.NotFound:
		default:
			return err
		}
	}
	if send {
		size, unit := info.Size(), "bytes"
		if file.workbook() {
			size, unit = check.size, "rows"
		}
		sum, err = c.send(ctx, env, svc, file, size, unit, *importID, *chunk)
		if err != nil {
			if ctx.Err() != nil || resumable(err) {
				fmt.Fprintln(env.stderr, "\n"+tr("The import is incomplete (import id %s): the rows the service committed are kept. Run the same command again to finish it; rows already committed are skipped.", *importID))
			}
			return err
		}
	}

	if out.json {
		if err := writeJSON(env.stdout, sum); err != nil {
			return err
		}
		if check.unreadable > 0 {
			fmt.Fprintln(notes, tr("%d rows could not be read and were not sent (they are in the rejects file)", check.unreadable))
		}
	} else {
		printImportSummary(env.stdout, sum, check.unreadable)
	}
	if sum.GetRejected() == 0 && check.unreadable == 0 {
		return nil
	}
	var rejected rowRejections
	if svc.listRejections != nil {
		rejected = (&rejectionPager{ctx: ctx, importID: *importID, list: svc.listRejections}).forRow
	} else {
		rejected = summaryRejections(sum)
	}
	n, err := writeImportRejects(file, c.columns, *rejectsPath, rejected)
	if err != nil {
		return fmt.Errorf("write rejected rows: %w", err)
	}
	fmt.Fprintln(notes, "\n"+tr("%d rejected rows, with the reason in the last columns, are in %s.", n, *rejectsPath))
	if svc.listRejections == nil && sum.GetRejectionsTruncated() {
		fmt.Fprintln(notes, tr("(The service listed only the first %d rejected rows; import the fixed file, then the rest show up.)", len(sum.GetRejections())))
	}
	fmt.Fprintln(notes, tr("Fix them there (the row_number, field and reason columns are ignored) and import that file:"))
	fmt.Fprintf(notes, "  labourlink %s %s\n", c.name, *rejectsPath)
	return exitError{code: exitRejected}
}

// importFileCheck is what the check pass learned about a file.
type importFileCheck struct {
	hash       string // hex SHA-256 of the file's bytes
	rows       int    // data rows
	unreadable int    // rows csvimport refused on their own (sent nowhere, listed in the rejects file)
	encoding   csvimport.Encoding
	sheet      string // the sheet read, for a workbook
	size       int64  // the reader's offset at the end (rows of a sheet)
}

// checkImportFile parses the whole file with columns and hashes it. A file that cannot be read
// with those columns (encoding, header, CSV syntax, sheet) is an error: nothing is sent.
func checkImportFile(file importFile, columns []csvimport.Column) (importFileCheck, error) {
	var c importFileCheck
	r, sheet, closeFile, err := file.open(columns...)
	if err != nil {
		return c, err
	}
	defer closeFile()
	c.sheet = sheet
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
			return c, fmt.Errorf("%s: %w; nothing was imported", file.path, err)
		}
		c.rows++
	}
	c.encoding, c.size = r.Encoding(), r.Offset()
	c.hash, err = file.hash(sheet)
	return c, err
}

// send streams the file's rows and returns the service's summary.
func (c *csvImport[R]) send(ctx context.Context, env *cliEnv, svc importService[R], file importFile, size int64, unit, importID string, chunk int) (*commonv1.ImportSummary, error) {
	r, _, closeFile, err := file.open(c.columns...)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	// No deadline: a large file takes minutes. Ctrl-C cancels the stream without ending it
	// cleanly, so the service keeps what it committed and the import can be resumed.
	stream, err := svc.open(ctx, importID)
	if err != nil {
		return nil, err
	}
	bar := newProgress(env.stderr, env.interactive, "sending", size, unit)
	sent := 0
	rows := make([]R, 0, chunk)
	// flush sends the rows read since the last chunk; final marks the end of the file, where
	// sent is the number of rows of the import.
	flush := func(final bool) (bool, error) {
		sent += len(rows)
		err := stream.send(rows, final, int64(sent))
		rows = make([]R, 0, chunk)
		bar.Set(r.Offset(), tr("%d rows sent", sent))
		if errors.Is(err, io.EOF) {
			return false, nil // the service answered early; closeAndRecv has its reply or error
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
		rows = append(rows, c.rowFrom(row))
		if len(rows) == chunk {
			if more, err = flush(false); err != nil {
				return nil, err
			}
		}
	}
	if more { // the last rows, or none, with the final mark
		if _, err := flush(true); err != nil {
			return nil, err
		}
	}
	if env.interactive || !c.waitOnTerminalOnly {
		bar.Set(size, fmt.Sprintf(c.waitNote, sent))
	}
	sum, err := stream.closeAndRecv()
	if err != nil {
		return nil, err
	}
	bar.Finish(fmt.Sprintf(c.doneNote, sent))
	return sum, nil
}

// resumable reports whether an import that failed with err can be finished by running the same
// command again: the stream broke off (cancelled, cut, the service stopping or failing), or the
// service said the import stays incomplete (INVALID_ARGUMENT on final or total_rows).
func resumable(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Canceled, codes.Unknown, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted,
		codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	case codes.InvalidArgument:
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				for _, fv := range br.GetFieldViolations() {
					if fv.GetField() == "final" || fv.GetField() == "total_rows" {
						return true
					}
				}
			}
		}
	}
	return false
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
	fmt.Fprintln(w, tr("Import %s:", s.GetImportId()))
	tb.render(w, false)
	if len(s.GetRejections()) == 0 {
		return
	}
	const show = 10
	fmt.Fprintln(w, "\n"+tr("First rejected rows:"))
	rt := newTable("row", "field", "reason").alignRight(0)
	for i, rj := range s.GetRejections() {
		if i == show {
			break
		}
		rt.add(false, rj.GetRowNumber(), rj.GetField(), rj.GetReason())
	}
	rt.render(w, false)
}

// isRejectsColumn reports whether a header name is one of the columns a rejects file adds.
func isRejectsColumn(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, c := range rejectsColumns {
		for _, a := range append([]string{c.Key}, c.Aliases...) {
			if n == strings.ToLower(a) {
				return true
			}
		}
	}
	return false
}

// rowRejections returns the fields and reasons of the rejections of row number n (none if the
// row was not rejected). Rows are asked for in increasing order.
type rowRejections func(n int64) (fields, reasons []string, err error)

// summaryRejections returns the rejections a summary lists, one per row (the last listed).
func summaryRejections(sum *commonv1.ImportSummary) rowRejections {
	byRow := map[int64]*commonv1.RowRejection{}
	for _, r := range sum.GetRejections() {
		byRow[r.GetRowNumber()] = r
	}
	return func(n int64) ([]string, []string, error) {
		rj := byRow[n]
		if rj == nil {
			return nil, nil, nil
		}
		return []string{rj.GetField()}, []string{rj.GetReason()}, nil
	}
}

// writeImportRejects writes the rejected rows of the file in to out: the file's own columns (its
// header as it was, without earlier row_number/field/reason columns), then row_number, field and
// reason. A row rejected for several fields is one line, fields and reasons joined by "; ". Rows
// the file reader could not read are listed too. A CSV file is UTF-8 with BOM and CRLF line ends,
// so that Excel opens it with the Chinese text intact; a name ending in .xlsx gets a workbook of
// text cells (xlsxRejects). It returns the number of rows written.
func writeImportRejects(in importFile, columns []csvimport.Column, out string, rejected rowRejections) (int, error) {
	r, _, closeFile, err := in.open(columns...)
	if err != nil {
		return 0, err
	}
	defer closeFile()
	var keep []int // indexes of the header's columns that are copied
	header := r.Header()
	head := []string{}
	for i, h := range header {
		if !isRejectsColumn(h) {
			keep = append(keep, i)
			head = append(head, h)
		}
	}

	tmp := out + ".tmp"
	defer os.Remove(tmp)
	var w rowWriter
	if isWorkbook(out) {
		tmp = out + ".tmp.xlsx" // excelize saves by the name's extension
		defer os.Remove(tmp)
		w, err = newXLSXRejects(tmp, len(head)+3)
	} else {
		w, err = newCSVRejects(tmp)
	}
	if err != nil {
		return 0, err
	}
	err = w.write(append(head, rejectsHeader()...))
	written := 0
	writeRow := func(cells []string, number int, fields, reasons []string) error {
		written++
		shown := make([]string, len(reasons))
		for i, r := range reasons {
			shown[i] = localized(r)
		}
		return w.write(append(cells, fmt.Sprint(number), strings.Join(fields, "; "), strings.Join(shown, tr("; "))))
	}
	copyCells := func(get func(int) string) []string {
		cells := make([]string, len(keep))
		for j, i := range keep {
			cells[j] = get(i)
		}
		return cells
	}
	for err == nil {
		row, rerr := r.Next()
		if rerr == io.EOF {
			break
		}
		var rowErr *csvimport.RowError
		if errors.As(rerr, &rowErr) {
			cells := copyCells(func(i int) string {
				if i < len(rowErr.Cells) {
					return strings.TrimSpace(rowErr.Cells[i])
				}
				return ""
			})
			err = writeRow(cells, rowErr.Row, []string{"(row)"}, []string{rowErr.Reason})
			continue
		}
		if rerr != nil {
			err = rerr
			break
		}
		var fields, reasons []string
		fields, reasons, err = rejected(int64(row.Number))
		if err != nil || len(fields) == 0 {
			continue
		}
		err = writeRow(copyCells(row.Cell), row.Number, fields, reasons)
	}
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return written, os.Rename(tmp, out)
}

// csvRejects writes a rejects CSV file.
type csvRejects struct {
	o *os.File
	w *csv.Writer
}

func newCSVRejects(path string) (*csvRejects, error) {
	o, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := csv.NewWriter(o)
	w.UseCRLF = true
	if _, err := o.WriteString("\ufeff"); err != nil {
		o.Close()
		return nil, err
	}
	return &csvRejects{o: o, w: w}, nil
}

func (c *csvRejects) write(cells []string) error { return c.w.Write(cells) }

func (c *csvRejects) close() error {
	c.w.Flush()
	err := c.w.Error()
	if cerr := c.o.Close(); err == nil {
		err = cerr
	}
	return err
}

// rejectionPager walks the rejections of an import in row order, a page at a time.
type rejectionPager struct {
	ctx      context.Context
	importID string
	list     func(ctx context.Context, importID, pageToken string) ([]*commonv1.RowRejection, string, error)
	page     []*commonv1.RowRejection
	token    string
	done     bool
}

// forRow is a rowRejections.
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
		page, token, err := p.list(p.ctx, p.importID, p.token)
		if err != nil {
			return nil, nil, err
		}
		p.page, p.token = page, token
		p.done = p.token == ""
	}
}
