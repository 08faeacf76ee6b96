package main

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/language"
)

// A county clerk in a zh_CN.UTF-8 locale imports a roster with bad rows: the summary table's
// headers and the rejects file's reasons are in Chinese. Not parallel: the language is the
// run's (cliLang), and parallel tests run after this one.
func TestRosterImportChineseRejects(t *testing.T) {
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", "zh_CN.UTF-8")
	addr, _ := rosterTestService(t)
	dir := t.TempDir()
	content, _ := spreadsheetCSV()
	path := filepath.Join(dir, "花名册.csv")
	writeFile(t, path, []byte(content))

	code, out, errOut := runRoster(t, addr, "roster", "import", path)
	if code != exitRejected {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	header, rows := readRejects(t, filepath.Join(dir, "花名册.rejects.csv"))
	if got := strings.Join(header[len(header)-3:], "|"); got != "行号|错误字段|错误原因" {
		t.Errorf("rejects header ends %q, want the Chinese names", got)
	}
	if len(rows) != 2 {
		t.Fatalf("rejects rows: %v", rows)
	}
	for _, r := range rows {
		reason := r.Get("错误原因")
		if reason == "" || !hasHan(reason) {
			t.Errorf("row %s: reason %q is not Chinese", r.Get("行号"), reason)
		}
	}

	// -lang en overrides the locale.
	addr2, _ := rosterTestService(t)
	code, out, errOut = runRoster(t, addr2, "-lang", "en", "roster", "import", path)
	if code != exitRejected {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	header, rows = readRejects(t, filepath.Join(dir, "花名册.rejects.csv"))
	if got := header[len(header)-1]; got != "reason" {
		t.Errorf("with -lang en the reason column is %q", got)
	}
	if len(rows) == 0 || hasHan(rows[0].Get("reason")) {
		t.Errorf("with -lang en: rows %v", rows)
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

// CJK text and names with · (U+00B7) and • (U+2022), East Asian Ambiguous, counted one
// column wide (see displayWidth), line up.
func TestTableAlignsCJKNames(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{
		{"王五", 4},
		{"阿依古丽·买买提", 15},
		{"迪丽•热巴", 9},
		{"ab", 2},
		{"（全角）", 8},
	}
	for _, tt := range tests {
		if got := displayWidth(tt.s); got != tt.want {
			t.Errorf("displayWidth(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
	tb := newTable("name", "county")
	tb.add(false, "阿依古丽·买买提", "522601")
	tb.add(false, "王五", "522602")
	tb.add(false, "迪丽•热巴", "522603")
	var b strings.Builder
	tb.render(&b, false)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	col := -1
	for _, l := range lines[1:] {
		i := strings.Index(l, "5226")
		if i < 0 {
			continue
		}
		w := displayWidth(l[:i])
		if col >= 0 && w != col {
			t.Errorf("county column starts at %d, want %d:\n%s", w, col, b.String())
		}
		col = w
	}
	if col < 0 {
		t.Fatalf("no rows:\n%s", b.String())
	}
}

// TestCLIHelpInChinese: in a Chinese locale the command list, a command's usage and its flags'
// help, the default usage of a command without its own, and the CLI's own errors (a wrapped one
// too) are in Chinese; in English they stay English.
func TestCLIHelpInChinese(t *testing.T) {
	defer func(l language.Tag) { cliLang = l }(cliLang)
	tests := []struct {
		name     string
		args     []string
		code     int
		stream   string // "out" or "err"
		want     []string
		unwanted []string
	}{
		{"command list", []string{"-lang", "zh", "help"}, exitOK, "out",
			[]string{"启动本地联盟", "从 CSV 文件导入劳动者花名册", "显示台账的对账"}, []string{"start the local federation"}},
		{"usage and flags", []string{"-lang", "zh", "absence", "-h"}, exitOK, "err",
			[]string{"用法：labourlink absence", "缺勤第一天，YYYY-MM-DD（必填）", "幂等键"}, []string{"first day of absence"}},
		{"default usage", []string{"-lang", "zh", "backup", "-h"}, exitOK, "err",
			[]string{"labourlink backup 的用法：", "要写入的文件"}, []string{"Usage of"}},
		{"own error", []string{"-lang", "zh", "absence"}, exitFailed, "err",
			[]string{"请给出一个劳动者编号"}, []string{"give one worker id"}},
		{"wrapped error", []string{"-lang", "zh", "absence", "-first-day", "2026-13-01", "w1"}, exitFailed, "err",
			[]string{"-first-day："}, []string{"%!"}},
		{"a service's flags", []string{"-lang", "zh", "serve", "sending", "-h"}, exitOK, "err",
			[]string{"运行 labourlink sending 服务", "本省的 GB/T 2260 代码", "./data/sending-REGION"}, []string{"Runs the labourlink", "输出-REGION"}},
		{"English", []string{"-lang", "en", "absence", "-h"}, exitOK, "err",
			[]string{"Usage: labourlink absence", "first day of absence, YYYY-MM-DD (required)"}, []string{"缺勤"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, tt.args...)
			got := out
			if tt.stream == "err" {
				got = errOut
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			checkOutput(t, got, tt.want, tt.unwanted)
		})
	}
}
