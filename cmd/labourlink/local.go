package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
)

// The take-over of returnees (ReturneeService): local employers and local placements.

func init() {
	register(&command{name: "local add", summary: "register a local employer (workshop, enterprise, public-welfare post) for returnees", run: runLocalAdd})
	register(&command{name: "local list", summary: "list the local employers with their places taken", run: runLocalList})
	register(&command{name: "local update", summary: "change a local employer's name, county, capacity or resumption", run: runLocalUpdate})
	register(&command{name: "local place", summary: "place a worker back home with a local employer", run: runLocalPlace})
	register(&command{name: "local summary", summary: "local employers and placements by kind, with the recovery rate", run: runLocalSummary})
}

// localKinds are the -kind words.
var localKinds = map[string]sendingv1.LocalEmployerKind{
	"workshop":   sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP,
	"enterprise": sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_LEADING_ENTERPRISE,
	"post":       sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_PUBLIC_WELFARE_POST,
}

func parseLocalKind(s string) (sendingv1.LocalEmployerKind, error) {
	if k, ok := localKinds[strings.ToLower(strings.TrimSpace(s))]; ok {
		return k, nil
	}
	return 0, fmt.Errorf("-kind %q: use workshop (扶贫车间), enterprise (龙头企业) or post (公益性岗位)", s)
}

func localKindWord(k sendingv1.LocalEmployerKind) string {
	switch k {
	case sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP:
		return "workshop 扶贫车间"
	case sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_LEADING_ENTERPRISE:
		return "enterprise 龙头企业"
	case sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_PUBLIC_WELFARE_POST:
		return "post 公益性岗位"
	case sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_UNSPECIFIED:
		return tr("all")
	}
	return fmt.Sprintf("kind %d", k)
}

func localEmployerName(s string) string {
	if strings.HasPrefix(s, "localEmployers/") {
		return s
	}
	return "localEmployers/" + s
}

// returneeClient dials the sending service of d.
func returneeClient(d *dialer) (sendingv1.ReturneeServiceClient, func(), error) {
	cc, err := d.dial()
	if err != nil {
		return nil, nil, err
	}
	return sendingv1.NewReturneeServiceClient(cc), func() { cc.Close() }, nil
}

func runLocalAdd(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink local add")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	name := fs.String("name", "", "what the employer is called (required), such as 关岭县花江镇扶贫车间")
	kind := fs.String("kind", "", "workshop (扶贫车间), enterprise (龙头企业) or post (公益性岗位) (required)")
	county := fs.String("county", "", "the county it is in, 6-digit code (required)")
	capacity := fs.Int("capacity", 0, "how many workers it can take at once (required)")
	resumed := fs.Bool("resumed", false, "it has resumed work (only then does it take workers)")
	requestID := fs.String("request-id", "", "idempotency key (default: a new one)")
	out := addOutputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := parseLocalKind(*kind)
	if err != nil {
		return err
	}
	if *requestID == "" {
		*requestID = newRequestID()
	}
	c, done, err := returneeClient(d)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.CreateLocalEmployer(ctx, &sendingv1.CreateLocalEmployerRequest{RequestId: *requestID, LocalEmployer: &sendingv1.LocalEmployer{
		DisplayName: *name, Kind: k, County: *county, Capacity: int32(*capacity), Resumed: *resumed,
	}})
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	e := resp.GetLocalEmployer()
	fmt.Fprint(env.stdout, tr("registered %s: %s, %s, %d places, resumed %s\n", e.GetLocalEmployerId(), e.GetDisplayName(), localKindWord(e.GetKind()), e.GetCapacity(), yesNo(e.GetResumed())))
	return nil
}

func runLocalList(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink local list")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	kind := fs.String("kind", "", "only this kind: workshop, enterprise or post")
	county := fs.String("county", "", "only this county (6-digit code)")
	resumed := fs.Bool("resumed", false, "only employers that have resumed work")
	out := addOutputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	req := &sendingv1.ListLocalEmployersRequest{County: *county, ResumedOnly: *resumed, PageSize: 1000}
	if *kind != "" {
		k, err := parseLocalKind(*kind)
		if err != nil {
			return err
		}
		req.Kind = k
	}
	c, done, err := returneeClient(d)
	if err != nil {
		return err
	}
	defer done()
	t := regions.Default()
	tb := newTable("id", "name", "kind", "county", "resumed", "places", "taken").alignRight(5, 6)
	var all []*sendingv1.LocalEmployer
	for {
		resp, err := c.ListLocalEmployers(ctx, req)
		if err != nil {
			return err
		}
		for _, e := range resp.GetLocalEmployers() {
			all = append(all, e)
			tb.add(e.GetResumed() && e.GetPlaced() >= e.GetCapacity(), e.GetLocalEmployerId(), e.GetDisplayName(), localKindWord(e.GetKind()),
				e.GetCounty()+" "+t.Name(e.GetCounty()), yesNo(e.GetResumed()), e.GetCapacity(), e.GetPlaced())
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return out.print(env, &sendingv1.ListLocalEmployersResponse{LocalEmployers: all}, func() { tb.render(env.stdout, env.colour) })
}

func runLocalUpdate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink local update")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	name := fs.String("name", "", "new name")
	county := fs.String("county", "", "new county (6-digit code)")
	capacity := fs.Int("capacity", 0, "new capacity")
	resumed := fs.String("resumed", "", "yes: it has resumed work; no: it has stopped")
	requestID := fs.String("request-id", "", "idempotency key (default: a new one)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink local update [flags] LOCAL_EMPLOYER_ID\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give one local employer id")
	}
	e := &sendingv1.LocalEmployer{Name: localEmployerName(fs.Arg(0))}
	var paths []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			e.DisplayName, paths = *name, append(paths, "display_name")
		case "county":
			e.County, paths = *county, append(paths, "county")
		case "capacity":
			e.Capacity, paths = int32(*capacity), append(paths, "capacity")
		case "resumed":
			paths = append(paths, "resumed")
		}
	})
	if len(paths) == 0 {
		return errors.New("give what to change: -name, -county, -capacity or -resumed")
	}
	r, err := parseYesNo("resumed", *resumed)
	if err != nil {
		return err
	}
	e.Resumed = r != nil && *r
	if *requestID == "" {
		*requestID = newRequestID()
	}
	c, done, err := returneeClient(d)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.UpdateLocalEmployer(ctx, &sendingv1.UpdateLocalEmployerRequest{LocalEmployer: e, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}, RequestId: *requestID})
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	u := resp.GetLocalEmployer()
	fmt.Fprint(env.stdout, tr("%s: %s, %s, %d places (%d taken), resumed %s\n", u.GetLocalEmployerId(), u.GetDisplayName(), localKindWord(u.GetKind()), u.GetCapacity(), u.GetPlaced(), yesNo(u.GetResumed())))
	return nil
}

func runLocalPlace(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink local place")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	start := fs.String("start", "", "first day of work, YYYY-MM-DD (default today)")
	requestID := fs.String("request-id", "", "idempotency key (default: a new one)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink local place [flags] WORKER_ID LOCAL_EMPLOYER_ID\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("give a worker id and a local employer id")
	}
	req := &sendingv1.PlaceWorkerLocallyRequest{Worker: rosterWorkerName(fs.Arg(0)), LocalEmployer: localEmployerName(fs.Arg(1)), RequestId: *requestID}
	if *start != "" {
		day, err := civil.Parse(*start)
		if err != nil {
			return fmt.Errorf("-start: %w", err)
		}
		req.StartDate = day
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	c, done, err := returneeClient(d)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.PlaceWorkerLocally(ctx, req)
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	e := resp.GetLocalEmployer()
	fmt.Fprint(env.stdout, tr("%s placed with %s (%s) from %s: %d of %d places taken.\n", resp.GetWorker().GetWorkerId(), e.GetLocalEmployerId(), e.GetDisplayName(),
		civil.Format(resp.GetWorker().GetLocalPlacements()[len(resp.GetWorker().GetLocalPlacements())-1].GetStartDate()), e.GetPlaced(), e.GetCapacity()))
	return nil
}

func runLocalSummary(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink local summary")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	county := fs.String("county", "", "only this county (6-digit code)")
	out := addOutputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, done, err := returneeClient(d)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.GetLocalEmploymentSummary(ctx, &sendingv1.GetLocalEmploymentSummaryRequest{County: *county})
	if err != nil {
		return err
	}
	return out.print(env, resp, func() {
		tb := newTable("kind", "registered", "resumed", "recovery rate", "places", "workers placed").alignRight(1, 2, 3, 4, 5)
		for _, k := range append(resp.GetByKind(), resp.GetTotal()) {
			tb.add(false, localKindWord(k.GetKind()), k.GetRegistered(), k.GetResumed(), ratio(k.GetResumed(), k.GetRegistered()), k.GetCapacity(), k.GetPlaced())
		}
		tb.render(env.stdout, env.colour)
	})
}

// ratio renders n/d as a percentage with its numerator and denominator: "97.0% (97/100)".
func ratio(n, d int64) string {
	if d == 0 {
		return fmt.Sprintf("- (%d/0)", n)
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*float64(n)/float64(d), n, d)
}
