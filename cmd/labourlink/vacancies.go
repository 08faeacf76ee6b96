package main

// The vacancy commands of the receiving service: `labourlink vacancies import FILE.csv` and
// `labourlink vacancies list`.
//
// `vacancies import` is a CSV import (see csvimport.go) to VacancyService.ImportVacancies;
// rejected rows are read back with ListVacancyImportRejections (every one, also when the
// summary lists only the first of them).

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/csvimport"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{name: "vacancies import", summary: "import vacancies from a CSV file into the receiving service", run: runVacanciesImport})
	register(&command{name: "vacancies list", summary: "list vacancies as a table, with filters", run: runVacanciesList})
}

// vacancyColumns is the CSV layout of a vacancy file: key (the VacancyRow field) and the header
// names accepted for it (matched ignoring case, full-/half-width forms and surrounding spaces).
// Keep /work/notes/readme-4.md in step.
var vacancyColumns = append([]csvimport.Column{
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
	{Key: "external_reference", Aliases: []string{"岗位编号", "单位岗位编号", "reference"}},
}, rejectsColumns...)

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
		MonthlyWageMinYuan: r.Get("wage_min"),
		MonthlyWageMaxYuan: r.Get("wage_max"),
		StartDate:          r.Get("start_date"),
		ValidThrough:       r.Get("valid_through"),
		MinAge:             r.Get("min_age"),
		MaxAge:             r.Get("max_age"),
		HousingProvided:    r.Get("housing_provided"),
		MealsProvided:      r.Get("meals_provided"),
		Contact:            r.Get("contact"),
		ExternalReference:  r.Get("external_reference"),
	}
}

// vacanciesImport is `labourlink vacancies import`.
var vacanciesImport = &csvImport[*receivingv1.VacancyRow]{
	name:     "vacancies import",
	kind:     daemon.Receiving,
	chunk:    1000,
	maxChunk: vacancyMaxChunk,
	columns:  vacancyColumns,
	rowFrom:  vacancyRowFrom,
	usage: `Usage: labourlink vacancies import [flags] FILE.csv|FILE.xlsx

Imports the vacancies of a CSV file (saved from Excel, WPS or LibreOffice; UTF-8 with or without
BOM, or GBK) into the receiving service; each good row becomes an OPEN vacancy. The first row
names the columns, in English or Chinese:
  employer_name (用人单位)  employer_credit_code (统一社会信用代码)  work_county (工作地点)
  occupation (职业)  headcount (招聘人数)  wage_min (最低月薪)  wage_max (最高月薪)
  start_date (开始日期)  valid_through (截止日期)                          required
  min_age (最低年龄)  max_age (最高年龄)  housing_provided (提供住宿)
  meals_provided (提供伙食)  contact (联系方式)
  external_reference (岗位编号): the employer's own reference of the post; a row whose credit
  code and reference name an existing vacancy updates it instead of creating another one
An .xlsx workbook is read directly (its first sheet, or -sheet NAME).
Rejected rows are written with their reasons to FILE.rejects.csv (FILE.rejects.xlsx for a
workbook): fix them there and import that file. Importing the same file again changes nothing; an edited file (another import id) updates
the vacancies of the rows with a reference and creates vacancies for the rows without one.

Flags:
`,
	waitNote: "%d rows sent, waiting for the commit",
	doneNote: "%d rows sent",
	connect: func(cc grpc.ClientConnInterface) importService[*receivingv1.VacancyRow] {
		client := receivingv1.NewVacancyServiceClient(cc)
		return importService[*receivingv1.VacancyRow]{
			open: func(ctx context.Context, importID string) (importStream[*receivingv1.VacancyRow], error) {
				stream, err := client.ImportVacancies(ctx)
				return importStream[*receivingv1.VacancyRow]{
					send: func(rows []*receivingv1.VacancyRow, final bool, totalRows int64) error {
						req := &receivingv1.ImportVacanciesRequest{ImportId: importID, Rows: rows, Final: final}
						if final {
							req.TotalRows = totalRows
						}
						return stream.Send(req)
					},
					closeAndRecv: func() (*commonv1.ImportSummary, error) {
						resp, err := stream.CloseAndRecv()
						return resp.GetSummary(), err
					},
				}, err
			},
			listRejections: func(ctx context.Context, importID, pageToken string) ([]*commonv1.RowRejection, string, error) {
				resp, err := client.ListVacancyImportRejections(ctx, &receivingv1.ListVacancyImportRejectionsRequest{ImportId: importID, PageSize: 10000, PageToken: pageToken})
				return resp.GetRejections(), resp.GetNextPageToken(), err
			},
		}
	},
}

func runVacanciesImport(ctx context.Context, env *cliEnv, args []string) error {
	return runCSVImport(ctx, env, args, vacanciesImport)
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
	fs := newFlagSet("labourlink vacancies list")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Receiving)
	statusFlag := fs.String("status", "", "only vacancies with this status (open, filled, closed, expired)")
	occ := fs.String("occupation", "", "only vacancies for this occupation (ISCO-08 code such as 8212, or GENERAL)")
	county := fs.String("county", "", "only vacancies in this work county (6-digit code)")
	employer := fs.String("employer", "", "only vacancies of this employer (unified social credit code)")
	out := addOutputFlag(fs)
	lf := addListFlags(fs, "vacancies")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink vacancies list [flags]\n\nLists vacancies in vacancy-id order.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseListArgs(fs, args, lf); err != nil {
		return err
	}
	req := &receivingv1.ListVacanciesRequest{Occupation: *occ, WorkCounty: *county, EmployerCreditCode: *employer, PageToken: *lf.pageToken}
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
	for len(vacancies) < *lf.pageSize {
		req.PageSize = int32(*lf.pageSize - len(vacancies))
		resp, err := client.ListVacancies(ctx, req)
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
	return out.print(env, &receivingv1.ListVacanciesResponse{Vacancies: vacancies, NextPageToken: req.PageToken, Revision: revision},
		func() { printVacancies(env, vacancies, revision, req.PageToken) })
}

// printVacancies prints a page of vacancies as a table, with the token of the next page.
func printVacancies(env *cliEnv, vacancies []*receivingv1.Vacancy, revision int64, nextPageToken string) {
	if len(vacancies) == 0 {
		fmt.Fprintln(env.stdout, tr("no vacancies match"))
		return
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
			fmt.Sprintf("%d-%d", v.GetMonthlyWageMinYuan(), v.GetMonthlyWageMaxYuan()), rosterDate(v.GetStartDate()), rosterDate(v.GetValidThrough()),
			vacancyStatusWord(v.GetStatus()))
	}
	tb.render(env.stdout, env.colour)
	fmt.Fprint(env.stdout, tr("\n%d vacancies (feed revision %d)\n", len(vacancies), revision))
	if nextPageToken != "" {
		fmt.Fprint(env.stdout, tr("more: add -page-token %s\n", nextPageToken))
	}
}
