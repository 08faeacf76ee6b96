package main

// Subsidy lists (docs/subsidies.md): `subsidies list` reads a sending province's eligible
// workers from the coordination service (worker ids and facts), or with -names from the sending
// service, which joins the names from its roster; every page is fetched, and the list is shown
// as a table, printed as JSON, or exported to CSV or .xlsx. `subsidies rules` shows the rules.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{
		name:    "subsidies list",
		summary: "list a sending province's workers eligible for a subsidy in a period (all pages), as a table, JSON, CSV or .xlsx",
		run:     runSubsidiesList,
	})
	register(&command{
		name:    "subsidies rules",
		summary: "show the subsidy rules the coordination service evaluates",
		run:     runSubsidiesRules,
	})
}

// The user-facing messages of the subsidy lists, plain English fmt formats (for a catalog).
const (
	msgSubsidyProvince = "-province is required: the sending province, such as 52 or 520000"
	msgSubsidyNoRule   = "-names asks the sending service, which does not list the rules: give -rule (labourlink subsidies rules lists them)"
	msgSubsidyNotOwn   = "the sending service at %s listed worker %s, not of province %s: point -addr at %s's sending service"
	msgSubsidySummary  = "%d entries (%d workers) eligible, as of %s. The same list again: -as-of %s"
	msgSubsidyWritten  = "wrote %d entries to %s (as of %s)"
)

// subsidyEntry is one entry of a list, from either service.
type subsidyEntry struct {
	workerID, name, homeCounty, rule string
	factEventID, batchID, receiving  string
	vacancy, departedEventID         string
	factDate, departedDate           *commonv1.Date
	registeredPoor                   bool
	monthsEmployed                   int32
}

func fromCoordination(e *coordinationv1.EligibleWorker) subsidyEntry {
	return subsidyEntry{workerID: e.GetWorkerId(), rule: e.GetRule(), factEventID: e.GetFactEventId(), batchID: e.GetBatchId(),
		receiving: e.GetReceivingRegion(), vacancy: e.GetVacancy(), departedEventID: e.GetDepartedEventId(), factDate: e.GetFactDate(),
		departedDate: e.GetDepartedDate(), registeredPoor: e.GetRegisteredPoor(), monthsEmployed: e.GetMonthsEmployed()}
}

func fromSending(e *sendingv1.NamedEligibleWorker) subsidyEntry {
	return subsidyEntry{workerID: e.GetWorkerId(), name: e.GetName(), homeCounty: e.GetHomeCounty(), rule: e.GetRule(),
		factEventID: e.GetFactEventId(), batchID: e.GetBatchId(), receiving: e.GetReceivingRegion(), vacancy: e.GetVacancy(),
		departedEventID: e.GetDepartedEventId(), factDate: e.GetFactDate(), departedDate: e.GetDepartedDate(),
		registeredPoor: e.GetRegisteredPoor(), monthsEmployed: e.GetMonthsEmployed()}
}

// subsidyColumns are the columns of an export (the API's field names); names adds name and
// home_county after worker_id.
func subsidyColumns(names bool) []string {
	cols := []string{"worker_id"}
	if names {
		cols = append(cols, "name", "home_county")
	}
	return append(cols, "rule", "fact_date", "fact_event_id", "months_employed", "batch_id", "receiving_region", "vacancy",
		"departed_date", "departed_event_id", "registered_poor", "as_of")
}

// cells is e as the cells of an export, under subsidyColumns(names).
func (e subsidyEntry) cells(names bool, asOf string) []string {
	c := []string{e.workerID}
	if names {
		c = append(c, e.name, e.homeCounty)
	}
	return append(c, e.rule, civil.Format(e.factDate), e.factEventID, strconv.Itoa(int(e.monthsEmployed)), e.batchID, e.receiving,
		e.vacancy, civil.Format(e.departedDate), e.departedEventID, strconv.FormatBool(e.registeredPoor), asOf)
}

// subsidyOutput is -o of `subsidies list`: table, json, or a file (.csv or .xlsx).
type subsidyOutput struct {
	json bool
	file string
}

func (o *subsidyOutput) Set(s string) error {
	switch {
	case s == "table":
		*o = subsidyOutput{}
	case s == "json":
		*o = subsidyOutput{json: true}
	case strings.HasSuffix(strings.ToLower(s), ".csv") || isWorkbook(s):
		*o = subsidyOutput{file: s}
	default:
		return fmt.Errorf("use table, json, or a file name ending in .csv or .xlsx, not %q", s)
	}
	return nil
}

func (o *subsidyOutput) String() string { return o.file }

// parseProvince reads a province as its 2-digit prefix (52) or its 6-digit code (520000).
func parseProvince(s string) (string, error) {
	if len(s) == 2 {
		s += "0000"
	}
	if !regions.Default().IsProvince(s) {
		return "", fmt.Errorf("-province: %q is not a province: give its 2 digits (52) or its code (520000)", s)
	}
	return s, nil
}

// parsePeriod reads a period: a year (2026), a month (2026-04), or FROM..TO (days, TO excluded).
func parsePeriod(s string) (start, end *commonv1.Date, err error) {
	if from, to, ok := strings.Cut(s, ".."); ok {
		if start, err = civil.Parse(from); err == nil {
			end, err = civil.Parse(to)
		}
		return start, end, err
	}
	if y, err := strconv.Atoi(s); err == nil && len(s) == 4 {
		return &commonv1.Date{Year: int32(y), Month: 1, Day: 1}, &commonv1.Date{Year: int32(y + 1), Month: 1, Day: 1}, nil
	}
	if t, err := time.Parse("2006-01", s); err == nil {
		n := t.AddDate(0, 1, 0)
		return &commonv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: 1}, &commonv1.Date{Year: int32(n.Year()), Month: int32(n.Month()), Day: 1}, nil
	}
	return nil, nil, fmt.Errorf("%q is not a period: give a year (2026), a month (2026-04) or FROM..TO (2026-01-01..2026-07-01, TO excluded)", s)
}

func runSubsidiesList(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink subsidies list")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Coordination)
	province := fs.String("province", "", "the sending province: its 2 digits (52) or its code (520000)")
	period := fs.String("period", strconv.Itoa(civil.Year(time.Now())), "the period of the facts: a year (2026), a month (2026-04) or FROM..TO (days, TO excluded)")
	rules := fs.String("rule", "", "only these rules, comma-separated (default: every rule of the coordination service)")
	asOfFlag := fs.String("as-of", "", "the cohort: only the facts the ledger had at this time (RFC 3339, as printed by an earlier listing); default now")
	names := fs.Bool("names", false, "with the workers' names, from the sending service (default -addr: the sending service); the coordination service never has them")
	pageSize := fs.Int("page-size", 500, "workers fetched per call (1 to 1000)")
	var out subsidyOutput
	fs.Var(&out, "o", "output: table (the default), json, or a file: FILE.csv (UTF-8 with BOM, CRLF) or FILE.xlsx (text cells)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink subsidies list -province 52 -period 2026 [-rule transport] [-names] [-o FILE.csv|FILE.xlsx]\n\n"+
			"Lists the workers of a sending province eligible for a subsidy in a period, one entry per worker and\n"+
			"rule (and calendar year), with the facts that make them eligible (the qualifying event and its day,\n"+
			"the trip's batch, destination and DEPARTED event). Every page is fetched. The list is as of a time\n"+
			"(printed): the same -as-of gives the same list later, whatever is reported since. With -names the\n"+
			"sending service joins the names from its roster (its own province's system and operators only).\n"+
			"See docs/subsidies.md.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *pageSize < 1 || *pageSize > 1000 {
		return errors.New("-page-size must be between 1 and 1000")
	}
	region := ""
	if *province != "" || !*names {
		if *province == "" {
			return errors.New(msgSubsidyProvince)
		}
		var err error
		if region, err = parseProvince(*province); err != nil {
			return err
		}
	}
	start, end, err := parsePeriod(*period)
	if err != nil {
		return fmt.Errorf("-period: %w", err)
	}
	var asOf *timestamppb.Timestamp
	if *asOfFlag != "" {
		t, err := time.Parse(time.RFC3339Nano, *asOfFlag)
		if err != nil {
			return fmt.Errorf("-as-of: %q is not an RFC 3339 time such as 2026-07-01T09:00:00+08:00", *asOfFlag)
		}
		asOf = timestamppb.New(t)
	}
	var ruleIDs []string
	for _, r := range strings.Split(*rules, ",") {
		if r = strings.TrimSpace(r); r != "" {
			ruleIDs = append(ruleIDs, r)
		}
	}
	if *names {
		if len(ruleIDs) == 0 {
			return errors.New(msgSubsidyNoRule)
		}
		d.defaultTo(fs, daemon.Sending)
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	if len(ruleIDs) == 0 {
		resp, err := coordinationv1.NewEligibilityServiceClient(cc).ListSubsidyRules(ctx, &coordinationv1.ListSubsidyRulesRequest{})
		if err != nil {
			return err
		}
		for _, r := range resp.GetRules() {
			ruleIDs = append(ruleIDs, r.GetId())
		}
	}

	// Every page of every rule, all as of the same time (the first answer's when -as-of is not
	// given), with progress on stderr.
	prog := newProgress(env.stderr, env.interactive, tr("fetching eligible workers"), 0, "entries")
	var entries []subsidyEntry
	for _, rule := range ruleIDs {
		token := ""
		for {
			var page []subsidyEntry
			var next string
			var answered *timestamppb.Timestamp
			if *names {
				resp, err := sendingv1.NewSubsidyServiceClient(cc).ListEligibleWorkers(ctx, &sendingv1.ListEligibleWorkersRequest{
					Rule: rule, PeriodStart: start, PeriodEnd: end, AsOf: asOf, PageSize: int32(*pageSize), PageToken: token})
				if err != nil {
					return err
				}
				for _, e := range resp.GetWorkers() {
					page = append(page, fromSending(e))
				}
				next, answered = resp.GetNextPageToken(), resp.GetAsOf()
			} else {
				resp, err := coordinationv1.NewEligibilityServiceClient(cc).ListEligibleWorkers(ctx, &coordinationv1.ListEligibleWorkersRequest{
					SendingRegion: region, Rule: rule, PeriodStart: start, PeriodEnd: end, AsOf: asOf, PageSize: int32(*pageSize), PageToken: token})
				if err != nil {
					return err
				}
				for _, e := range resp.GetWorkers() {
					page = append(page, fromCoordination(e))
				}
				next, answered = resp.GetNextPageToken(), resp.GetAsOf()
			}
			if asOf == nil {
				asOf = answered
			}
			for _, e := range page {
				if *names && region != "" && !strings.HasPrefix(e.workerID, region) {
					return fmt.Errorf(msgSubsidyNotOwn, d.addr, e.workerID, region, region)
				}
			}
			entries = append(entries, page...)
			prog.Set(int64(len(entries)), rule)
			if next == "" {
				break
			}
			token = next
		}
	}
	prog.Finish("")
	at := ""
	if asOf != nil {
		at = asOf.AsTime().In(civil.Zone).Format(time.RFC3339Nano)
	}
	switch {
	case out.file != "":
		if err := writeSubsidies(out.file, *names, at, entries); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, tr(msgSubsidyWritten, len(entries), out.file, at))
		return nil
	case out.json:
		if *names {
			doc := &sendingv1.ListEligibleWorkersResponse{AsOf: asOf}
			for _, e := range entries {
				doc.Workers = append(doc.Workers, e.named())
			}
			return writeJSON(env.stdout, doc)
		}
		doc := &coordinationv1.ListEligibleWorkersResponse{AsOf: asOf}
		for _, e := range entries {
			doc.Workers = append(doc.Workers, e.eligible())
		}
		return writeJSON(env.stdout, doc)
	}
	header := []string{"worker id"}
	if *names {
		header = append(header, "name", "home county")
	}
	header = append(header, "rule", "fact date", "fact event", "months", "batch", "destination", "departed", "departed event")
	tb := newTable(header...)
	workers := map[string]bool{}
	for _, e := range entries {
		workers[e.workerID] = true
		row := []any{e.workerID}
		if *names {
			row = append(row, e.name, e.homeCounty)
		}
		months := "-"
		if e.monthsEmployed > 0 {
			months = strconv.Itoa(int(e.monthsEmployed))
		}
		row = append(row, e.rule, civil.Format(e.factDate), e.factEventID, months, e.batchID, e.receiving, civil.Format(e.departedDate), e.departedEventID)
		tb.add(false, row...)
	}
	tb.render(env.stdout, env.colour)
	fmt.Fprintln(env.stdout, tr(msgSubsidySummary, len(entries), len(workers), at, at))
	return nil
}

func (e subsidyEntry) eligible() *coordinationv1.EligibleWorker {
	return &coordinationv1.EligibleWorker{WorkerId: e.workerID, Rule: e.rule, FactEventId: e.factEventID, FactDate: e.factDate,
		BatchId: e.batchID, ReceivingRegion: e.receiving, Vacancy: e.vacancy, DepartedEventId: e.departedEventID,
		DepartedDate: e.departedDate, RegisteredPoor: e.registeredPoor, MonthsEmployed: e.monthsEmployed}
}

func (e subsidyEntry) named() *sendingv1.NamedEligibleWorker {
	return &sendingv1.NamedEligibleWorker{WorkerId: e.workerID, Name: e.name, HomeCounty: e.homeCounty, Rule: e.rule,
		FactEventId: e.factEventID, FactDate: e.factDate, BatchId: e.batchID, ReceivingRegion: e.receiving, Vacancy: e.vacancy,
		DepartedEventId: e.departedEventID, DepartedDate: e.departedDate, RegisteredPoor: e.registeredPoor, MonthsEmployed: e.monthsEmployed}
}

// writeSubsidies exports entries to path: a workbook of text cells (sheet "subsidies") when the
// name ends in .xlsx, else CSV in UTF-8 with BOM and CRLF line ends (as the rejects files), so
// that Excel keeps the ids and the Chinese names intact. The file appears whole or not at all.
func writeSubsidies(path string, names bool, asOf string, entries []subsidyEntry) error {
	cols := subsidyColumns(names)
	tmp := path + ".tmp"
	var w rowWriter
	var err error
	if isWorkbook(path) {
		tmp = path + ".tmp.xlsx" // excelize saves by the name's extension
		w, err = newXLSXSheet(tmp, subsidiesSheet, len(cols))
	} else {
		w, err = newCSVRejects(tmp)
	}
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = w.write(cols)
	for _, e := range entries {
		if err != nil {
			break
		}
		err = w.write(e.cells(names, asOf))
	}
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// subsidiesSheet is the sheet of an exported workbook.
const subsidiesSheet = "subsidies"

func runSubsidiesRules(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink subsidies rules")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Coordination)
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink subsidies rules [flags]\n\nShows the subsidy rules the coordination service evaluates (its rules file, docs/subsidies.md).\n\nFlags:"))
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
	resp, err := coordinationv1.NewEligibilityServiceClient(cc).ListSubsidyRules(ctx, &coordinationv1.ListSubsidyRulesRequest{})
	if err != nil {
		return err
	}
	return out.print(env, resp, func() {
		tb := newTable("rule", "fact", "registered-poor", "out of province", "months", "disqualified by", "once per", "title")
		for _, r := range resp.GetRules() {
			var disq []string
			for _, k := range r.GetDisqualifiedBy() {
				disq = append(disq, strings.TrimPrefix(k.String(), "EVENT_KIND_"))
			}
			if r.GetDisqualifyOnlyBeforeFact() && len(disq) > 0 {
				disq[len(disq)-1] += " (before the fact)"
			}
			months := "-"
			if r.GetMinMonthsEmployed() > 0 {
				months = strconv.Itoa(int(r.GetMinMonthsEmployed()))
			}
			tb.add(false, r.GetId(), strings.TrimPrefix(r.GetFact().String(), "EVENT_KIND_"), yesNo(r.GetRegisteredPoor()),
				yesNo(r.GetOutOfProvince()), months, strings.Join(disq, ", "), r.GetOncePer(), r.GetTitle())
		}
		tb.render(env.stdout, env.colour)
	})
}
