package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving"
)

// vacancyTestService runs a receiving service for Guangdong in this process and returns its
// address.
func vacancyTestService(t *testing.T) string {
	return vacancyTestServiceWith(t, receiving.Config{Region: "440000"})
}

// vacancyTestServiceWith is vacancyTestService with a configuration of its own.
func vacancyTestServiceWith(t *testing.T, cfg receiving.Config) string {
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	addr, _ := serveForTest(t, lg, "receiving", receiving.Schema, func(db *store.DB) (registrar, error) {
		return receiving.New(db, lg, cfg)
	})
	return addr
}

func runVacancyCLI(t *testing.T, addr string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errOut}
	code := runCLI(context.Background(), env, append(args, "-addr", addr))
	return out.String(), errOut.String(), code
}

func TestVacanciesImportAndList(t *testing.T) {
	t.Parallel()
	addr := vacancyTestService(t)
	first := "91440300MA5FN1234"
	c, err := creditcode.CheckChar(first)
	if err != nil {
		t.Fatal(err)
	}
	code := first + string(c)
	start := time.Now().AddDate(0, 1, 0).Format("2006-01-02")
	end := time.Now().AddDate(0, 4, 0).Format("2006/1/2")
	csvText := "\ufeff用人单位,统一社会信用代码,工作地点,职业,招聘人数,最低月薪,最高月薪,开始日期,截止日期,最高年龄,包住,包吃,联系方式\r\n" +
		fmt.Sprintf("深圳南山电子厂,%s,440305,8212,30,4500,6000,%s,%s,45,是,是,0755-26000000\r\n", code, start, end) +
		fmt.Sprintf("东莞物流,%s,441900,9333,12,5000,7000,%s,%s,,否,是,\r\n", code, start, end) +
		fmt.Sprintf("坏行,%s,520102,8212,0,4500,6000,%s,%s,,,,\r\n", code, start, end) +
		fmt.Sprintf("广州建筑,%s,440106,9313,8,6000,8000,%s,%s,55,是,否,\r\n", code, start, end)
	dir := t.TempDir()
	path := filepath.Join(dir, "vacancies.csv")
	if err := os.WriteFile(path, []byte(csvText), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, exit := runVacancyCLI(t, addr, "vacancies", "import", path)
	if exit != exitRejected {
		t.Fatalf("import exit %d\n%s\n%s", exit, out, errOut)
	}
	for _, want := range []string{"created", "rejected", "vacancies.rejects.csv"} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	rejects, err := os.ReadFile(filepath.Join(dir, "vacancies.rejects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rejects)), "\r\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "坏行") || !strings.Contains(lines[1], ",4,work_county,") {
		t.Errorf("rejects file:\n%s", rejects)
	}
	// Importing the same file again changes nothing.
	out2, _, exit := runVacancyCLI(t, addr, "vacancies", "import", path)
	if exit != exitRejected || out2 != out {
		t.Errorf("second import (exit %d):\n%s\nwant the same summary:\n%s", exit, out2, out)
	}
	out, errOut, exit = runVacancyCLI(t, addr, "vacancies", "list", "-status", "open")
	if exit != 0 {
		t.Fatalf("list exit %d: %s", exit, errOut)
	}
	for _, want := range []string{"深圳南山电子厂", "440305 南山区", "8212", "4500-6000", "open", "3 vacancies (feed revision 3)"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runVacancyCLI(t, addr, "vacancies", "list", "-occupation", "9313")
	if !strings.Contains(out, "广州建筑") || strings.Contains(out, "深圳南山电子厂") {
		t.Errorf("list -occupation 9313:\n%s", out)
	}
	_, errOut, exit = runVacancyCLI(t, addr, "vacancies", "list", "-status", "gone")
	if exit == 0 || !strings.Contains(errOut, "open, filled, closed, expired") {
		t.Errorf("bad -status: exit %d, %s", exit, errOut)
	}
}

// When the service's summary lists only the first rejected rows, the rejects file still has
// every one: the CLI reads them with ListVacancyImportRejections.
func TestVacanciesImportWritesEveryRejectedRow(t *testing.T) {
	t.Parallel()
	addr := vacancyTestServiceWith(t, receiving.Config{Region: "440000", ImportReplyRejections: 2})
	first := "91440300MA5FN1234"
	c, err := creditcode.CheckChar(first)
	if err != nil {
		t.Fatal(err)
	}
	code := first + string(c)
	start := time.Now().AddDate(0, 1, 0).Format("2006-01-02")
	end := time.Now().AddDate(0, 4, 0).Format("2006-01-02")
	var b strings.Builder
	b.WriteString("employer_name,employer_credit_code,work_county,occupation,headcount,wage_min,wage_max,start_date,valid_through\r\n")
	var wantRows []string
	for i := range 9 {
		headcount := "10"
		if i%3 != 0 {
			headcount = "lots"
			wantRows = append(wantRows, fmt.Sprint(i+2)) // the header is row 1
		}
		fmt.Fprintf(&b, "厂%d,%s,440305,8212,%s,4500,6000,%s,%s\r\n", i, code, headcount, start, end)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "many.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, exit := runVacancyCLI(t, addr, "vacancies", "import", "-chunk", "4", path)
	if exit != exitRejected {
		t.Fatalf("import exit %d\n%s\n%s", exit, out, errOut)
	}
	if !strings.Contains(out, "6 rejected rows") || strings.Contains(out, "listed only the first") {
		t.Errorf("import output:\n%s", out)
	}
	rejects, err := os.ReadFile(filepath.Join(dir, "many.rejects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rejects)), "\r\n")
	var gotRows []string
	for _, l := range lines[1:] {
		cells := strings.Split(l, ",")
		if len(cells) < 3 || cells[len(cells)-2] != "headcount" {
			t.Errorf("rejects line %q: want the headcount rejection", l)
			continue
		}
		gotRows = append(gotRows, cells[len(cells)-3])
	}
	if fmt.Sprint(gotRows) != fmt.Sprint(wantRows) {
		t.Errorf("rejects file rows %v, want %v:\n%s", gotRows, wantRows, rejects)
	}
}
