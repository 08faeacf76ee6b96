package main

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/text/language"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/i18n"
)

// TestLocalizedErrorsOverGRPC: a sending service on a real listener answers an invalid request
// with a google.rpc.LocalizedMessage in the language of the caller's accept-language header, and
// each field violation with its localized_message, beside the English BadRequest.
func TestLocalizedErrorsOverGRPC(t *testing.T) {
	addr, _ := rosterTestService(t)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := sendingv1.NewRosterServiceClient(cc)
	const english = `"99x9" is not an ISCO-08 unit group code (4 digits, such as 8212)`
	tests := []struct {
		accept, locale, violation, message string
	}{
		{"zh-CN", "zh-Hans", `"99x9" 不是 ISCO-08 职业细类代码（4 位数字，如 8212）`, "参数无效：occupation："},
		{"en", "en", english, "invalid argument: occupation: "},
		{"", "en", english, "invalid argument: occupation: "},
	}
	for _, tt := range tests {
		ctx := context.Background()
		if tt.accept != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "accept-language", tt.accept)
		}
		_, err := client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{Occupation: "99x9"})
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument {
			t.Fatalf("accept %q: %v, want InvalidArgument", tt.accept, err)
		}
		var loc *errdetails.LocalizedMessage
		var fv *errdetails.BadRequest_FieldViolation
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.LocalizedMessage:
				loc = d
			case *errdetails.BadRequest:
				for _, v := range d.GetFieldViolations() {
					if v.GetField() == "occupation" {
						fv = v
					}
				}
			}
		}
		if loc == nil || loc.GetLocale() != tt.locale || !strings.HasPrefix(loc.GetMessage(), tt.message) || !strings.Contains(loc.GetMessage(), tt.violation) {
			t.Errorf("accept %q: LocalizedMessage %v, want locale %s and %q", tt.accept, loc, tt.locale, tt.message+tt.violation)
		}
		if fv == nil {
			t.Fatalf("accept %q: no occupation violation in %v", tt.accept, st.Details())
		}
		if fv.GetDescription() != english {
			t.Errorf("accept %q: description %q, want the English %q", tt.accept, fv.GetDescription(), english)
		}
		if lm := fv.GetLocalizedMessage(); lm.GetLocale() != tt.locale || lm.GetMessage() != tt.violation {
			t.Errorf("accept %q: violation localized_message %v, want %s %q", tt.accept, lm, tt.locale, tt.violation)
		}
	}
}

// TestCLIPrintsServiceReasonInLocale: with LANG=zh_CN.UTF-8 the CLI asks the service for Chinese
// (accept-language) and prints the reason of a refused request in Chinese; with LANG=C in English.
func TestCLIPrintsServiceReasonInLocale(t *testing.T) {
	addr, _ := rosterTestService(t)
	for _, tt := range []struct{ lang, want string }{
		{"zh_CN.UTF-8", `occupation: "99x9" 不是 ISCO-08 职业细类代码（4 位数字，如 8212）`},
		{"C", `occupation: "99x9" is not an ISCO-08 unit group code (4 digits, such as 8212)`},
	} {
		t.Setenv("LC_ALL", "")
		t.Setenv("LC_MESSAGES", "")
		t.Setenv("LANG", tt.lang)
		code, out, errOut := runRoster(t, addr, "roster", "list", "-occupation", "99x9")
		if code != exitFailed || !strings.Contains(errOut, tt.want) {
			t.Errorf("LANG=%s: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.lang, code, out, errOut, exitFailed, tt.want)
		}
	}
}

// TestCallsCarryAcceptLanguage: every call of the CLI carries the accept-language of cliLang.
func TestCallsCarryAcceptLanguage(t *testing.T) {
	defer func(l language.Tag) { cliLang = l }(cliLang)
	for _, tt := range []struct {
		lang language.Tag
		want language.Tag
	}{{i18n.Chinese, i18n.Chinese}, {i18n.English, i18n.English}} {
		cliLang = tt.lang
		md, _ := metadata.FromOutgoingContext(withLanguage(context.Background()))
		got := md.Get("accept-language")
		if len(got) != 1 || i18n.FromAcceptLanguage(got[0]) != tt.want {
			t.Errorf("cliLang %v: accept-language %q", tt.lang, got)
		}
	}
}

// TestUsageInLanguage: `labourlink help` prints its prose in the chosen language.
func TestUsageInLanguage(t *testing.T) {
	for _, tt := range []struct{ lang, want string }{{"zh", "用法：labourlink 命令"}, {"en", "Usage: labourlink COMMAND"}} {
		var out, errOut strings.Builder
		if code := runCLI(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, []string{"-lang", tt.lang, "help"}); code != exitOK || !strings.Contains(out.String(), tt.want) {
			t.Errorf("-lang %s help: exit %d, %q; want %q", tt.lang, code, out.String(), tt.want)
		}
		errOut.Reset()
		if code := runCLI(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, []string{"-lang", tt.lang, "nosuch"}); code != exitUsage || !strings.Contains(errOut.String(), map[string]string{"zh": "未知命令", "en": "unknown command"}[tt.lang]) {
			t.Errorf("-lang %s nosuch: exit %d, %q", tt.lang, code, errOut.String())
		}
	}
}
