package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{name: "roster lookup", summary: "find a worker by identity number (exact match; every lookup is recorded)", run: runRosterLookup})
	register(&command{name: "roster lookups", summary: "list the records of lookups by identity number (who, when, which worker)", run: runRosterLookups})
}

func runRosterLookup(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink roster lookup", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	idn := fs.String("id-number", "", "the 18-character resident identity number (required)")
	full := fs.Bool("full", false, "show the identity number and phone in full (for this province's operators)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: labourlink roster lookup -id-number N [flags]\n\nFlags:")
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
		fmt.Fprintf(env.stdout, "\nrecorded as %s\n", resp.GetLookupRecord())
	})
}

func runRosterLookups(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink roster lookups", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: labourlink roster lookups [flags]\n\nFlags:")
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
			fmt.Fprintln(env.stdout, "no lookups recorded")
			return
		}
		tb := newTable("record", "time", "caller", "worker found")
		for _, r := range all.GetLookupRecords() {
			found := r.GetWorker()
			if found == "" {
				found = "none"
			}
			tb.add(false, r.GetName(), r.GetLookupTime().AsTime().Local().Format("2006-01-02 15:04:05"), r.GetCaller(), found)
		}
		tb.render(env.stdout, env.colour)
	})
}
