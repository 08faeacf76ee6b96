package main

import (
	"context"
	"fmt"
	"google.golang.org/protobuf/proto"
	"strconv"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{
		name:    "assess show",
		summary: "show the assessment of provinces for a year: registered-poor workers sent out or onboarded against the baseline",
		run:     runAssessShow,
	})
}

func runAssessShow(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink assess show")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Coordination)
	year := fs.Int("year", civil.Year(time.Now()), "calendar year (China Standard Time)")
	region := fs.String("region", "", "only this province (default: every registered or paired province)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink assess show [flags]\n\nShows, per province and calendar year, the distinct registered-poor workers sent out (sending\n"+
			"province) or onboarded (receiving province) in the year (numerator), against the baseline\n"+
			"(denominator): set by an operator (SetBaseline), or else the province's count of the year before\n"+
			"from the ledger. Provinces without a baseline are marked.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	ac := coordinationv1.NewAssessmentServiceClient(cc)
	var list []*coordinationv1.Assessment
	var doc proto.Message // what -o json prints: the response (all pages in one)
	if *region != "" {
		resp, err := ac.GetAssessment(ctx, &coordinationv1.GetAssessmentRequest{Region: *region, Year: int32(*year)})
		if err != nil {
			return err
		}
		list = append(list, resp.GetAssessment())
		doc = resp
	} else {
		req := &coordinationv1.ListAssessmentsRequest{Year: int32(*year), PageSize: 1000}
		for {
			resp, err := ac.ListAssessments(ctx, req)
			if err != nil {
				return err
			}
			list = append(list, resp.GetAssessments()...)
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		doc = &coordinationv1.ListAssessmentsResponse{Assessments: list}
	}
	return out.print(env, doc, func() { printAssessments(env, *year, list) })
}

// printAssessments prints the assessments of year as a table.
func printAssessments(env *cliEnv, year int, list []*coordinationv1.Assessment) {
	w := env.stdout
	fmt.Fprint(w, tr("Assessment %d (distinct registered-poor workers)\n", year))
	t := newTable("province", "role", "counted", "numerator", "denominator", "baseline source", "percentage").alignRight(3, 4, 6)
	for _, a := range list {
		counted := "sent out"
		if a.GetRole() == commonv1.RegionRole_REGION_ROLE_RECEIVING {
			counted = "onboarded"
		}
		den, pct := "-", "-"
		none := a.GetBaselineSource() == coordinationv1.BaselineSource_BASELINE_SOURCE_NONE || a.Denominator == nil
		if !none {
			den, pct = strconv.FormatInt(a.GetDenominator(), 10), strconv.FormatFloat(a.GetPercentage(), 'f', 1, 64)+"%"
		}
		t.add(none, regionLabel(a.GetRegion()), roleText(a.GetRole()), counted, a.GetNumerator(), den, sourceText(a.GetBaselineSource()), pct)
	}
	t.render(w, env.colour)
}

func roleText(r commonv1.RegionRole) string {
	switch r {
	case commonv1.RegionRole_REGION_ROLE_SENDING:
		return tr("sending")
	case commonv1.RegionRole_REGION_ROLE_RECEIVING:
		return tr("receiving")
	default:
		return "-"
	}
}

func sourceText(s coordinationv1.BaselineSource) string {
	switch s {
	case coordinationv1.BaselineSource_BASELINE_SOURCE_OPERATOR:
		return tr("operator")
	case coordinationv1.BaselineSource_BASELINE_SOURCE_LEDGER_PREVIOUS_YEAR:
		return tr("ledger, previous year")
	case coordinationv1.BaselineSource_BASELINE_SOURCE_NONE:
		return tr("none")
	default:
		return tr("unknown (%d)", int32(s))
	}
}
