package main

import (
	"os"
	"strings"

	"github.com/eastwest/labourlink/services/platform/i18n"
)

// cliLang is the language of this run's messages, table headers and rejects-file reasons:
// the -lang flag before the command, else the POSIX locale (LC_ALL, LC_MESSAGES, LANG;
// Chinese for zh_*). runCLI sets it before running the command.
var cliLang = i18n.English

// takeLangFlag reads a leading "-lang zh|en" (or -lang=zh, --lang) off args and sets cliLang from it or, without
// it, from the locale; it returns the rest of the arguments.
func takeLangFlag(args []string) ([]string, error) {
	cliLang = i18n.FromEnv(os.Getenv)
	if len(args) == 0 {
		return args, nil
	}
	a := strings.TrimPrefix(args[0], "-")
	a = strings.TrimPrefix(a, "-")
	var value string
	switch {
	case a == "lang" && len(args) >= 2:
		value, args = args[1], args[2:]
	case strings.HasPrefix(a, "lang="):
		value, args = strings.TrimPrefix(a, "lang="), args[1:]
	default:
		return args, nil
	}
	tag, err := i18n.Parse(value)
	if err != nil {
		return args, err
	}
	cliLang = tag
	return args, nil
}

// tr formats a message of the CLI in cliLang; format is its English text, a key of the
// catalog (services/platform/i18n).
func tr(format string, args ...any) string { return i18n.Sprintf(cliLang, format, args...) }

// localized renders text a service sent in English (a rejection reason, an error message) in
// cliLang, by the catalog's formats.
func localized(english string) string { return i18n.Translate(cliLang, english) }
