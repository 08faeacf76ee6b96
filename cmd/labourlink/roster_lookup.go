package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{name: "roster lookup", summary: "find a worker by identity number (exact match; every lookup is recorded)", run: runRosterLookup})
	register(&command{name: "roster lookups", summary: "list the records of lookups by identity number and by name (who, when, which worker)", run: runRosterLookups})
	register(&command{name: "roster find", summary: "find workers by name in a home county (exact, or -prefix; every lookup is recorded)", run: runRosterFind})
}

func runRosterLookup(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink roster lookup")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	idn := fs.String("id-number", "", "the 18-character resident identity number (required)")
	full := fs.Bool("full", false, "show the identity number and phone in full (for this province's operators)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink roster lookup -id-number N [flags]\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *idn == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("give -id-number")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	view := sendingv1.WorkerView_WORKER_VIEW_BASIC
	if *full {
		view = sendingv1.WorkerView_WORKER_VIEW_FULL
	}
	resp, err := sendingv1.NewRosterServiceClient(cc).LookupWorker(ctx, &sendingv1.LookupWorkerRequest{IdNumber: *idn, View: view})
	if err != nil {
		return err
	}
	return out.print(env, resp, func() {
		printWorker(env.stdout, resp.GetWorker())
		fmt.Fprint(env.stdout, tr("\nrecorded as %s\n", resp.GetLookupRecord()))
	})
}

func runRosterLookups(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink roster lookups")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink roster lookups [flags]\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errors.New("no arguments expected")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewRosterServiceClient(cc)
	all := &sendingv1.ListLookupRecordsResponse{}
	req := &sendingv1.ListLookupRecordsRequest{PageSize: 1000}
	for {
		resp, err := client.ListLookupRecords(ctx, req)
		if err != nil {
			return err
		}
		all.LookupRecords = append(all.LookupRecords, resp.GetLookupRecords()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return out.print(env, all, func() {
		if len(all.GetLookupRecords()) == 0 {
			fmt.Fprintln(env.stdout, tr("no lookups recorded"))
			return
		}
		tb := newTable("record", "time", "caller", "kind", "worker found")
		for _, r := range all.GetLookupRecords() {
			found := r.GetWorker()
			if n := len(r.GetFoundWorkers()); n > 1 {
				found = tr("%s and %d more", found, n-1)
			}
			if found == "" {
				found = tr("none")
			}
			kind := tr("identity number")
			if r.GetKind() == sendingv1.LookupKind_LOOKUP_KIND_NAME {
				kind = tr("name in %s", r.GetHomeCounty())
			}
			tb.add(false, r.GetName(), r.GetLookupTime().AsTime().Local().Format("2006-01-02 15:04:05"), r.GetCaller(), kind, found)
		}
		tb.render(env.stdout, env.colour)
	})
}

func runRosterFind(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink roster find")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	name := fs.String("name", "", "the worker's name, such as 张三 (required)")
	county := fs.String("county", "", "the home county's 6-digit code, such as 520502 (required)")
	prefix := fs.Bool("prefix", false, "also every name starting with -name")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink roster find -name NAME -county CODE [-prefix] [flags]\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *name == "" || *county == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("give -name and -county")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewRosterServiceClient(cc)
	all := &sendingv1.FindWorkersResponse{}
	var records []string
	req := &sendingv1.FindWorkersRequest{HomeCounty: *county, FullName: *name, Prefix: *prefix, PageSize: 100}
	for {
		resp, err := client.FindWorkers(ctx, req)
		if err != nil {
			return err
		}
		all.Workers = append(all.Workers, resp.GetWorkers()...)
		records = append(records, resp.GetLookupRecord())
		all.LookupRecord = resp.GetLookupRecord()
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return out.print(env, all, func() {
		if len(all.GetWorkers()) == 0 {
			fmt.Fprintln(env.stdout, tr("no worker of that name in %s", *county))
		} else {
			printFoundWorkers(env, all.GetWorkers())
		}
		fmt.Fprintf(env.stdout, "\n%s\n", tr("recorded as %s", strings.Join(records, ", ")))
	})
}

// printFoundWorkers writes what a hotline needs of each worker found: who, where from, the
// status, and the current trip (batch, employer, work county) where the roster knows it; the
// phone masked.
func printFoundWorkers(env *cliEnv, ws []*sendingv1.Worker) {
	t := regions.Default()
	tb := newTable("worker id", "name", "home county", "status", "phone", "batch", "employer", "work county")
	for _, w := range ws {
		var batch, employer, work string
		if trips := w.GetTrips(); len(trips) > 0 {
			cur := trips[len(trips)-1]
			batch, employer = cur.GetBatchId(), cur.GetEmployerName()
			if c := cur.GetWorkCounty(); c != "" {
				work = c + " " + t.Name(c)
			}
		}
		c := w.GetHomeCounty()
		tb.add(false, w.GetWorkerId(), w.GetFullName(), c+" "+t.Name(c), rosterStatusWord(w.GetStatus()), w.GetPhone(), batch, employer, work)
	}
	tb.render(env.stdout, env.colour)
}
