package main

// The vacancy commands of the receiving service: `labourlink vacancies import FILE.csv` and
// `labourlink vacancies list`.
//
// `vacancies import` works like `roster import`: a check pass parses the whole file and hashes
// it (a broken file sends nothing; the default import id is the content hash, so importing the
// same file again changes nothing), a send pass streams the rows in chunks to
// VacancyService.ImportVacancies with a progress bar, and rejected rows are written with their
// reasons to FILE.rejects.csv (the file's columns plus row_number, field and reason), which can
// be fixed and imported as it is.

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

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/csvimport"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/occupation"
	"github.com/eastwest/labourlink/services/peers"
	"github.com/eastwest/labourlink/services/regions"
)

func init() {
	register(&command{name: "vacancies import", summary: "import vacancies from a CSV file into the receiving service", run: runVacanciesImport})
	register(&command{name: "vacancies list", summary: "list vacancies as a table, with filters", run: runVacanciesList})
}

// vacancyColumns is the CSV layout of a vacancy file: key (the VacancyRow field) and the header
// names accepted for it (matched ignoring case, full-/half-width forms and surrounding spaces).
// Keep /work/notes/readme-4.md in step.
var vacancyColumns = []csvimport.Column{
	{Key: "employer_name", Aliases: []string{"用人单位", "单位名称", "企业名称", "employer"}, Required: true},
	{Key: "employer_credit_code", Aliases: []string{"统一社会信用代码", "信用代码", "credit_code"}, Required: true},
	{Key: "work_county", Aliases: []string{"工作地点", "工作县区", "工作地区代码", "county"}, Required: true},
	{Key: "occupation", Aliases: []string{"职业", "职业代码", "工种"}, Required: true},
	{Key: "headcount", Aliases: []string{"招聘人数", "人数"}, Required: true},
	{Key: "wage_min", Aliases: []string{"最低月薪", "月薪下限"}, Required: true},
	{Key: "wage_max", Aliases: []string{"最高月薪", "月薪上限"}, Required: true},
	{Key: "start_date", Aliases: []string{"开始日期", "到岗日期"}, Required: true},
	{Key: "valid_through", Aliases: []string{"截止日期", "有效期至"}, Required: true},
	{Key: "min_age", Aliases: []string{"最低年龄", "年龄下限"}},
	{Key: "max_age", Aliases: []string{"最高年龄", "年龄上限"}},
	{Key: "housing_provided", Aliases: []string{"提供住宿", "包住"}},
	{Key: "meals_provided", Aliases: []string{"提供伙食", "包吃"}},
	{Key: "contact", Aliases: []string{"联系方式", "招聘联系人"}},
	{Key: rosterColRowNumber, Aliases: []string{"行号", "原行号"}},
	{Key: rosterColField, Aliases: []string{"错误字段"}},
	{Key: rosterColReason, Aliases: []string{"错误原因", "原因"}},
}

// vacancyMaxChunk is the most rows one ImportVacancies message may carry.
const vacancyMaxChunk = 5000

func vacancyRowFrom(r csvimport.Row) *receivingv1.VacancyRow {
	return &receivingv1.VacancyRow{
		RowNumber:          int64(r.Number),
		EmployerName:       r.Get("employer_name"),
		EmployerCreditCode: r.Get("employer_credit_code"),
		WorkCounty:         r.Get("work_county"),
		Occupation:         r.Get("occupation"),
		Headcount:          r.Get("headcount"),
		WageMin:            r.Get("wage_min"),
		WageMax:            r.Get("wage_max"),
		StartDate:          r.Get("start_date"),
		ValidThrough:       r.Get("valid_through"),
		MinAge:             r.Get("min_age"),
		MaxAge:             r.Get("max_age"),
		HousingProvided:    r.Get("housing_provided"),
		MealsProvided:      r.Get("meals_provided"),
		Contact:            r.Get("contact"),
	}
}

// vacancyFileCheck is what the check pass learned about a file.
type vacancyFileCheck struct {
	hash       string
	rows       int
	unreadable map[int]string // row number -> why csvimport could not read it
	encoding   csvimport.Encoding
}

func checkVacancyFile(path string) (vacancyFileCheck, error) {
	c := vacancyFileCheck{unreadable: map[int]string{}}
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	h := sha256.New()
	r, err := csvimport.Open(io.TeeReader(f, h), vacancyColumns...)
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
			c.unreadable[rowErr.Row] = rowErr.Reason
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

func runVacanciesImport(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink vacancies import", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Receiving)
	importID := fs.String("import-id", "", "import id (default: derived from the file's content, so that importing the same file again changes nothing)")
	rejectsPath := fs.String("rejects", "", "where to write the rejected rows with their reasons (default FILE.rejects.csv)")
	chunk := fs.Int("chunk", 1000, fmt.Sprintf("rows per message (1 to %d)", vacancyMaxChunk))
	fs.Usage = func() {
		fmt.Fprint(env.stderr, `Usage: labourlink vacancies import [flags] FILE.csv

Imports the vacancies of a CSV file (saved from Excel, WPS or LibreOffice; UTF-8 with or without
BOM, or GBK) into the receiving service; each good row becomes an OPEN vacancy. The first row
names the columns, in English or Chinese:
  employer_name (用人单位)  employer_credit_code (统一社会信用代码)  work_county (工作地点)
  occupation (职业)  headcount (招聘人数)  wage_min (最低月薪)  wage_max (最高月薪)
  start_date (开始日期)  valid_through (截止日期)                          required
  min_age (最低年龄)  max_age (最高年龄)  housing_provided (提供住宿)
  meals_provided (提供伙食)  contact (联系方式)
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
	if *chunk < 1 || *chunk > vacancyMaxChunk {
		return fmt.Errorf("-chunk must be between 1 and %d", vacancyMaxChunk)
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
	check, err := checkVacancyFile(path)
	if err != nil {
		return err
	}
	if *importID == "" {
		*importID = "csv-" + check.hash[:32]
	}
	fmt.Fprintf(env.stderr, "%d rows (%s); import id %s\n", check.rows+len(check.unreadable), check.encoding, *importID)

	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := receivingv1.NewVacancyServiceClient(cc)
	sum, err := sendVacancyFile(ctx, env, client, path, info.Size(), *importID, *chunk)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(env.stderr, "\nThe import was interrupted. Rows already committed are kept; run the same command again to finish it.\n")
		}
		return err
	}
	printImportSummary(env.stdout, sum, len(check.unreadable))
	if sum.GetRejected() == 0 && len(check.unreadable) == 0 {
		return nil
	}
	n, err := writeVacancyRejects(path, *rejectsPath, sum.GetRejections(), check.unreadable)
	if err != nil {
		return fmt.Errorf("write rejected rows: %w", err)
	}
	fmt.Fprintf(env.stdout, "\n%d rejected rows, with the reason in the last columns, are in %s.\n", n, *rejectsPath)
	if sum.GetRejectionsTruncated() {
		fmt.Fprintf(env.stdout, "(The service listed only the first %d rejected rows; import the fixed file, then the rest show up.)\n", len(sum.GetRejections()))
	}
	fmt.Fprintf(env.stdout, "Fix them there (the row_number, field and reason columns are ignored) and import that file:\n")
	fmt.Fprintf(env.stdout, "  labourlink vacancies import %s\n", *rejectsPath)
	return nil
}

// sendVacancyFile streams the file's rows and returns the service's summary.
func sendVacancyFile(ctx context.Context, env *cliEnv, client receivingv1.VacancyServiceClient, path string, size int64, importID string, chunk int) (*commonv1.ImportSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := csvimport.Open(f, vacancyColumns...)
	if err != nil {
		return nil, err
	}
	stream, err := client.ImportVacancies(ctx)
	if err != nil {
		return nil, err
	}
	bar := newProgress(env.stderr, env.interactive, "sending", size, "bytes")
	sent := 0
	rows := make([]*receivingv1.VacancyRow, 0, chunk)
	flush := func() (bool, error) {
		err := stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: importID, Rows: rows})
		sent += len(rows)
		rows = make([]*receivingv1.VacancyRow, 0, chunk)
		bar.Set(r.Offset(), fmt.Sprintf("%d rows sent", sent))
		if errors.Is(err, io.EOF) {
			return false, nil // the service answered early; CloseAndRecv has its error
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
			continue // listed in the rejects file
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, vacancyRowFrom(row))
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
	bar.Set(size, fmt.Sprintf("%d rows sent, waiting for the commit", sent))
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	bar.Finish(fmt.Sprintf("%d rows sent", sent))
	return resp.GetSummary(), nil
}

// writeVacancyRejects writes the rejected and unreadable rows of the file to out: its own
// columns, then row_number, field and reason; UTF-8 with BOM and CRLF for Excel. It returns the
// number of rows written.
func writeVacancyRejects(in, out string, rejections []*commonv1.RowRejection, unreadable map[int]string) (int, error) {
	byRow := map[int64]*commonv1.RowRejection{}
	for _, r := range rejections {
		byRow[r.GetRowNumber()] = r
	}
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := csvimport.Open(f)
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
	w := csv.NewWriter(o)
	w.UseCRLF = true
	_, err = o.WriteString("\ufeff")
	if err == nil {
		err = w.Write(append(append([]string(nil), keep...), rosterColRowNumber, rosterColField, rosterColReason))
	}
	written := 0
	for err == nil {
		row, rerr := r.Next()
		if rerr == io.EOF {
			break
		}
		var rowErr *csvimport.RowError
		if errors.As(rerr, &rowErr) {
			written++
			err = w.Write(append(make([]string, len(keep)), fmt.Sprint(rowErr.Row), "(row)", unreadable[rowErr.Row]))
			continue
		}
		if rerr != nil {
			err = rerr
			break
		}
		rj := byRow[int64(row.Number)]
		if rj == nil {
			continue
		}
		cells := make([]string, len(keep))
		for i, h := range keep {
			cells[i] = row.Get(h)
		}
		written++
		err = w.Write(append(cells, fmt.Sprint(row.Number), rj.GetField(), rj.GetReason()))
	}
	w.Flush()
	if err == nil {
		err = w.Error()
	}
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return written, os.Rename(tmp, out)
}

// vacancyStatusWord is "open", "filled", "closed" or "expired".
func vacancyStatusWord(s receivingv1.VacancyStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "VACANCY_STATUS_"))
}

// parseVacancyStatus reads open, OPEN or VACANCY_STATUS_OPEN.
func parseVacancyStatus(s string) (receivingv1.VacancyStatus, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(u, "VACANCY_STATUS_") {
		u = "VACANCY_STATUS_" + u
	}
	v, ok := receivingv1.VacancyStatus_value[u]
	if !ok || v == 0 {
		return 0, fmt.Errorf("-status %q: use one of open, filled, closed, expired", s)
	}
	return receivingv1.VacancyStatus(v), nil
}

func runVacanciesList(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink vacancies list", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Receiving)
	statusFlag := fs.String("status", "", "only vacancies with this status (open, filled, closed, expired)")
	occ := fs.String("occupation", "", "only vacancies for this occupation (ISCO-08 code such as 8212, or GENERAL)")
	county := fs.String("county", "", "only vacancies in this work county (6-digit code)")
	employer := fs.String("employer", "", "only vacancies of this employer (unified social credit code)")
	pageSize := fs.Int("page-size", 50, "vacancies to show (1 to 1000)")
	pageToken := fs.String("page-token", "", "continue a previous listing (printed at its end)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: labourlink vacancies list [flags]\n\nLists vacancies in vacancy-id order.\n\nFlags:")
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
	req := &receivingv1.ListVacanciesRequest{Occupation: *occ, WorkCounty: *county, EmployerCreditCode: *employer, PageToken: *pageToken}
	if *statusFlag != "" {
		st, err := parseVacancyStatus(*statusFlag)
		if err != nil {
			return err
		}
		req.Status = st
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := receivingv1.NewVacancyServiceClient(cc)
	var vacancies []*receivingv1.Vacancy
	var revision int64
	for len(vacancies) < *pageSize {
		req.PageSize = int32(*pageSize - len(vacancies))
		callCtx, cancel := peers.WithTimeout(ctx)
		resp, err := client.ListVacancies(callCtx, req)
		cancel()
		if err != nil {
			return err
		}
		if revision == 0 {
			revision = resp.GetRevision()
		}
		vacancies = append(vacancies, resp.GetVacancies()...)
		req.PageToken = resp.GetNextPageToken()
		if req.PageToken == "" {
			break
		}
	}
	if len(vacancies) == 0 {
		fmt.Fprintln(env.stdout, "no vacancies match")
		return nil
	}
	t := regions.Default()
	tb := newTable("vacancy id", "employer", "work county", "occupation", "head", "reserved", "filled", "wage CNY/month", "start", "valid through", "status").alignRight(4, 5, 6)
	for _, v := range vacancies {
		occTitle := occupation.Title(v.GetOccupation())
		if len(occTitle) > 28 {
			occTitle = occTitle[:27] + "…"
		}
		tb.add(v.GetStatus() == receivingv1.VacancyStatus_VACANCY_STATUS_EXPIRED,
			v.GetVacancyId(), v.GetEmployerName(), v.GetWorkCounty()+" "+t.Name(v.GetWorkCounty()),
			v.GetOccupation()+" "+occTitle, v.GetHeadcount(), v.GetReserved(), v.GetFilled(),
			fmt.Sprintf("%d-%d", v.GetWageMin(), v.GetWageMax()), rosterDate(v.GetStartDate()), rosterDate(v.GetValidThrough()),
			vacancyStatusWord(v.GetStatus()))
	}
	tb.render(env.stdout, env.interactive)
	fmt.Fprintf(env.stdout, "\n%d vacancies (feed revision %d)\n", len(vacancies), revision)
	if req.PageToken != "" {
		fmt.Fprintf(env.stdout, "more: add -page-token %s\n", req.PageToken)
	}
	return nil
}
