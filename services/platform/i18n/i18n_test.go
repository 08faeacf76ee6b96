package i18n_test

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"github.com/eastwest/labourlink/services/platform/i18n"
)

// TestTranslationsKeepVerbs: a translation formats the same arguments as its English key.
func TestTranslationsKeepVerbs(t *testing.T) {
	plain := regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?([a-zA-Z%])`)
	kinds := func(s string) string {
		var out []string
		for _, m := range plain.FindAllStringSubmatch(s, -1) {
			if m[3] != "%" {
				out = append(out, m[3])
			}
		}
		sort.Strings(out)
		return strings.Join(out, "")
	}
	for _, k := range i18n.Keys() {
		if got, want := kinds(translation(k)), kinds(k); got != want {
			t.Errorf("%q: translation has verbs %q, want %q", k, got, want)
		}
	}
}

func translation(k string) string { return i18n.RawChinese(k) }

func TestSprintf(t *testing.T) {
	tests := []struct {
		tag    language.Tag
		format string
		args   []any
		want   string
	}{
		{i18n.English, "row %d: %s", []any{2026, "x"}, "row 2026: x"},
		{i18n.Chinese, "row %d: %s", []any{2026, "x"}, "第 2026 行：x"},
		{i18n.Chinese, "%s may not call %s on %s: %s", []any{"a", "B", "c", "d"}, "a 无权对 c 调用 B：d"},
		{i18n.Chinese, "not in the catalog %d", []any{1}, "not in the catalog 1"},
		{language.MustParse("zh-CN"), "must not be empty", nil, "不能为空"},
	}
	for _, tt := range tests {
		if got := i18n.Sprintf(tt.tag, tt.format, tt.args...); got != tt.want {
			t.Errorf("Sprintf(%v, %q) = %q, want %q", tt.tag, tt.format, got, tt.want)
		}
	}
}

func TestTranslate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"row 12: must not be empty", "第 12 行：不能为空"},
		{`"52262X" is not a GB/T 2260 county code`, `"52262X" 不是 GB/T 2260 县级行政区划代码`},
		{"must be 1 to 50, got 0", "必须为 1 到 50，实际为 0"},
		{"something no catalog has", "something no catalog has"},
		// An error of fmt.Errorf("-first-day: %w", err) as the CLI prints it: the wrapped
		// error's text translated too, no %!w.
		{"-first-day: must not be empty", "-first-day：不能为空"},
		{"give one worker id", "请给出一个劳动者编号"},
		// Verbs with a width (%04d) keep it.
		{"2026-13-01 is not a real date", "2026-13-01 不是真实存在的日期"},
		{"-first-day: \"2026-13-01\": 2026-13-01 is not a real date", "-first-day：\"2026-13-01\"：2026-13-01 不是真实存在的日期"},
	}
	for _, tt := range tests {
		if got := i18n.Translate(i18n.Chinese, tt.in); got != tt.want {
			t.Errorf("Translate(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := i18n.Translate(i18n.English, tt.in); got != tt.in {
			t.Errorf("Translate(en, %q) = %q", tt.in, got)
		}
	}
}

func TestLanguageChoice(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		got  language.Tag
		want language.Tag
	}{
		{"LANG zh_CN", i18n.FromEnv(env(map[string]string{"LANG": "zh_CN.UTF-8"})), i18n.Chinese},
		{"LC_ALL wins", i18n.FromEnv(env(map[string]string{"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"})), i18n.English},
		{"LC_MESSAGES before LANG", i18n.FromEnv(env(map[string]string{"LC_MESSAGES": "zh_TW.Big5", "LANG": "C"})), i18n.Chinese},
		{"C", i18n.FromEnv(env(map[string]string{"LANG": "C"})), i18n.English},
		{"none", i18n.FromEnv(env(nil)), i18n.English},
		{"fr", i18n.FromLocale("fr_FR.UTF-8"), i18n.English},
		{"accept zh-CN", i18n.FromAcceptLanguage("zh-CN"), i18n.Chinese},
		{"accept weights", i18n.FromAcceptLanguage("fr;q=0.9, zh-Hans;q=0.8, en;q=0.5"), i18n.Chinese},
		{"accept en first", i18n.FromAcceptLanguage("en-GB, zh"), i18n.English},
		{"accept empty", i18n.FromAcceptLanguage(""), i18n.English},
		{"accept garbage", i18n.FromAcceptLanguage(";;;"), i18n.English},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	for _, s := range []string{"zh", "zh-CN", "zh_CN.UTF-8"} {
		if tag, err := i18n.Parse(s); err != nil || tag != i18n.Chinese {
			t.Errorf("Parse(%q) = %v, %v", s, tag, err)
		}
	}
	if tag, err := i18n.Parse("en"); err != nil || tag != i18n.English {
		t.Errorf("Parse(en) = %v, %v", tag, err)
	}
	for _, s := range []string{"", "fr", "???"} {
		if _, err := i18n.Parse(s); err == nil {
			t.Errorf("Parse(%q) gave no error", s)
		}
	}
}
