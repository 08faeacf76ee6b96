package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/daemon"
)

// Employment dynamics (就业动态): a sending province's (DynamicsService of the sending service) or
// the nation's (DynamicsService of the coordination service), as of a date.

func init() {
	register(&command{
		name:    "dynamics show",
		summary: "employment dynamics as of a date: registered-poor workers out at work against last year, local employers' recovery",
		run:     runDynamicsShow,
	})
}

func runDynamicsShow(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink dynamics show")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	asOf := fs.String("as-of", "", "the day, YYYY-MM-DD (default today, China time)")
	county := fs.String("county", "", "only workers of this home county (6-digit code; sending province only)")
	national := fs.Bool("national", false, "the national figures, from the coordination service's ledger (default -addr: the coordination service)")
	sendingRegion := fs.String("region", "", "with -national: only this sending province (6-digit code)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink dynamics show [flags]\n\nShows the distinct registered-poor workers out at work on a day (departed on or before it, and\n"+
			"on it not yet back home, not out of the job, not a no-show), by home county, destination and\n"+
			"occupation (a sending province) or by sending and destination province (-national), against\n"+
			"the same day a year before and against the year before's total; and, for a sending province,\n"+
			"the local employers' recovery rate (resumed / registered) on the day. Each percentage shows\n"+
			"its numerator and denominator. See docs/dynamics.md.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	day := civil.Today(time.Now())
	if *asOf != "" {
		var err error
		if day, err = civil.Parse(*asOf); err != nil {
			return fmt.Errorf("-as-of: %w", err)
		}
	}
	if *national && *county != "" {
		return fmt.Errorf("-county is for a sending province's figures: the national ones are by province (-region)")
	}
	if !*national && *sendingRegion != "" {
		return fmt.Errorf("-region goes with -national (a sending service shows its own province)")
	}
	if *national {
		d.defaultTo(fs, daemon.Coordination)
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	if *national {
		resp, err := coordinationv1.NewDynamicsServiceClient(cc).GetNationalEmploymentDynamics(ctx,
			&coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: day, SendingRegion: *sendingRegion})
		if err != nil {
			return err
		}
		return out.print(env, resp, func() { printNationalDynamics(env, resp, *sendingRegion) })
	}
	resp, err := sendingv1.NewDynamicsServiceClient(cc).GetEmploymentDynamics(ctx, &sendingv1.GetEmploymentDynamicsRequest{AsOf: day, HomeCounty: *county})
	if err != nil {
		return err
	}
	return out.print(env, resp, func() { printDynamics(env, resp, *county) })
}

// printDynamics prints a sending province's figures (of county, when not empty): the headline,
// then a table per breakdown.
func printDynamics(env *cliEnv, r *sendingv1.GetEmploymentDynamicsResponse, county string) {
	w := env.stdout
	who := "poor labourers"
	if county != "" {
		who += " of " + regionLabel(county)
	}
	headline(w, r.GetAsOf(), who, r.GetTotal())
	workshopsLine(w, r.GetRecoveryByKind())
	rec := r.GetRecoveryTotal().GetRecoveryRate()
	fmt.Fprint(w, tr("Local employers resumed: %s (%s/%s); registered-poor workers placed locally: %s.\n",
		percent(rec), count(rec.GetNumerator()), count(rec.GetDenominator()), count(r.GetPlacedLocally())))
	dynamicsTable(env, "by home county", "county", r.GetByHomeCounty(), notRecorded(regionLabel), r)
	dynamicsTable(env, "by destination", "province", r.GetByDestination(), regionLabel, r)
	dynamicsTable(env, "by occupation", "occupation", r.GetByOccupation(), notRecorded(nil), r)
	recoveryTable(env, r.GetAsOf(), r.GetRecoveryByKind(), r.GetRecoveryTotal())
}

// workshopsLine prints the published sentence of the workshops' recovery ("97.0% of workshops
// resumed (97/100)."), when there are workshops.
func workshopsLine(w io.Writer, byKind []*sendingv1.LocalRecovery) {
	for _, k := range byKind {
		if k.GetKind() == sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP {
			rec := k.GetRecoveryRate()
			fmt.Fprint(w, tr("%s of workshops resumed (%s/%s).\n", percent(rec), count(rec.GetNumerator()), count(rec.GetDenominator())))
		}
	}
}

// recoveryTable prints the local employers' recovery by kind and in all, when there are any.
func recoveryTable(env *cliEnv, asOf *commonv1.Date, byKind []*sendingv1.LocalRecovery, total *sendingv1.LocalRecovery) {
	if len(byKind) == 0 {
		return
	}
	fmt.Fprint(env.stdout, tr("\nlocal employers on %s\n", civil.Format(asOf)))
	tb := newTable("kind", "resumed", "registered", "recovery rate").alignRight(1, 2, 3)
	for _, k := range append(byKind, total) {
		rr := k.GetRecoveryRate()
		tb.add(false, localKindWord(k.GetKind()), count(rr.GetNumerator()), count(rr.GetDenominator()), percent(rr))
	}
	tb.render(env.stdout, env.colour)
}

// printNationalDynamics prints the national figures (of the sending province region, when not
// empty).
func printNationalDynamics(env *cliEnv, r *coordinationv1.GetNationalEmploymentDynamicsResponse, region string) {
	who := "poor labourers"
	if region != "" {
		who += " of " + regionLabel(region)
	}
	w := env.stdout
	headline(w, r.GetAsOf(), who, r.GetTotal())
	workshopsLine(w, r.GetRecoveryByKind())
	rec := r.GetRecoveryTotal().GetRecoveryRate()
	fmt.Fprint(w, tr("Local employers resumed: %s (%s/%s).\n", percent(rec), count(rec.GetNumerator()), count(rec.GetDenominator())))
	dynamicsTable(env, "by sending province", "province", r.GetBySendingRegion(), regionLabel, r)
	dynamicsTable(env, "by destination", "province", r.GetByDestination(), regionLabel, r)
	dynamicsTable(env, "by home county", "county", r.GetByHomeCounty(), notRecorded(regionLabel), r)
	dynamicsTable(env, "by occupation", "occupation", r.GetByOccupation(), notRecorded(nil), r)
	recoveryTable(env, r.GetAsOf(), r.GetRecoveryByKind(), r.GetRecoveryTotal())
	if rows := r.GetRecoveryBySendingRegion(); len(rows) > 0 {
		fmt.Fprint(w, tr("\nlocal employers by sending province on %s\n", civil.Format(r.GetAsOf())))
		tb := newTable("province", "resumed", "registered", "recovery rate").alignRight(1, 2, 3)
		for _, row := range rows {
			rr := row.GetRecoveryTotal().GetRecoveryRate()
			tb.add(false, regionLabel(row.GetSendingRegion()), count(rr.GetNumerator()), count(rr.GetDenominator()), percent(rr))
		}
		tb.render(w, env.colour)
	}
}

// notRecorded labels the key "" (a code not recorded) "not recorded", the others by label (the
// code itself when label is nil).
func notRecorded(label func(string) string) func(string) string {
	return func(k string) string {
		switch {
		case k == "":
			return tr("not recorded")
		case label == nil:
			return k
		}
		return label(k)
	}
}

// dated is what the tables need of either response.
type dated interface {
	GetSameDayLastYear() *commonv1.Date
	GetLastYear() int32
}

// headline prints the published sentence: "As of 30 April 2026, poor labourers out at work:
// 1,234 = 95.4% of the same day last year (1,293); 87.0% of last year's total (1,418)."
func headline(w io.Writer, asOf *commonv1.Date, who string, t *commonv1.DynamicsRow) {
	fmt.Fprint(w, tr("As of %s, %s out at work: %s = %s of the same day last year (%s); %s of last year's total (%s).\n",
		longDate(asOf), who, count(t.GetOutAtWork()), percent(t.GetAgainstSameDayLastYear()), count(t.GetSameDayLastYear()),
		percent(t.GetAgainstLastYearTotal()), count(t.GetLastYearTotal())))
}

// dynamicsTable prints rows under title, their keys named by label.
func dynamicsTable(env *cliEnv, title, keyHeader string, rows []*commonv1.DynamicsRow, label func(string) string, r dated) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(env.stdout, "\n%s\n", title)
	tb := newTable(keyHeader, "out at work", "same day "+strconv.Itoa(int(r.GetSameDayLastYear().GetYear())), "vs same day",
		strconv.Itoa(int(r.GetLastYear()))+" total", "vs last year").alignRight(1, 2, 3, 4, 5)
	for _, row := range rows {
		tb.add(false, label(row.GetKey()), count(row.GetOutAtWork()), count(row.GetSameDayLastYear()), percent(row.GetAgainstSameDayLastYear()),
			count(row.GetLastYearTotal()), percent(row.GetAgainstLastYearTotal()))
	}
	tb.render(env.stdout, env.colour)
}

// percent is the ratio's percentage ("95.4%"), or "-" when its denominator is 0.
func percent(r *commonv1.Ratio) string {
	if r.Percentage == nil {
		return "-"
	}
	return strconv.FormatFloat(r.GetPercentage(), 'f', 1, 64) + "%"
}

// count writes n with thousands separators: 1,234,567.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// longDate writes d as "30 April 2026".
func longDate(d *commonv1.Date) string {
	return fmt.Sprintf("%d %s %d", d.GetDay(), time.Month(d.GetMonth()), d.GetYear())
}
