// Package eligibility lists the workers a subsidy is due to, from the ledger's facts
// (EligibilityService): rules that are data (a JSON rules file, rules/default.json embedded),
// evaluated per worker over the worker's events as of a time, so a fixed cohort gives the same
// list whatever is reported later; and its exports (CSV, .xlsx).
package eligibility

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

//go:embed rules/default.json
var defaultRules []byte

// Windows of once_per: how often a worker may be eligible under a rule.
const (
	OncePerYear = "year" // once per calendar year (China time) of the qualifying fact
	OncePerEver = "ever" // once
)

// Rule is one subsidy rule of a rules file (docs/subsidies.md).
type Rule struct {
	ID                       string   `json:"id"`
	Title                    string   `json:"title"`
	Fact                     string   `json:"fact"`
	RegisteredPoor           bool     `json:"registered_poor"`
	OutOfProvince            bool     `json:"out_of_province"`
	MinMonthsEmployed        int32    `json:"min_months_employed"`
	DisqualifiedBy           []string `json:"disqualified_by"`
	DisqualifyOnlyBeforeFact bool     `json:"disqualify_only_before_fact"`
	OncePer                  string   `json:"once_per"`

	fact coordinationv1.EventKind
	disq map[coordinationv1.EventKind]bool
}

// Rules is a validated rules file.
type Rules struct {
	list []*Rule
	byID map[string]*Rule
}

// Default returns the project's rules (rules/default.json).
func Default() *Rules {
	r, err := Parse(defaultRules)
	if err != nil {
		panic("eligibility: the embedded rules/default.json is invalid: " + err.Error()) // a build defect, caught by the tests
	}
	return r
}

// Load reads and validates the rules file at path.
func Load(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("subsidy rules: %w", err)
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("subsidy rules %s: %w", path, err)
	}
	return r, nil
}

// kindOf is the event kind named s ("NO_SHOW" or "EVENT_KIND_NO_SHOW").
func kindOf(s string) (coordinationv1.EventKind, bool) {
	k, ok := coordinationv1.EventKind_value["EVENT_KIND_"+strings.TrimPrefix(s, "EVENT_KIND_")]
	if !ok || k == 0 {
		return 0, false
	}
	return coordinationv1.EventKind(k), true
}

// Parse validates a rules file: every rule with an id (1 to 64 of a-z, 0-9, '-') used once, a
// fact DEPARTED or EMPLOYMENT_CHECKPOINT, months employed 1 to 120 for a checkpoint (0 for a
// departure), known disqualifying kinds, once_per year or ever; unknown fields refused. An error
// names the rule (its index in "rules" and its id) and the field.
func Parse(b []byte) (*Rules, error) {
	var f struct {
		Rules []json.RawMessage `json:"rules"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a rules file: %w", jsonProblem(b, err))
	}
	if len(f.Rules) == 0 {
		return nil, errors.New(`no rules: the file needs {"rules": [ ... ]} with at least one rule`)
	}
	out := &Rules{byID: map[string]*Rule{}}
	for i, raw := range f.Rules {
		var r *Rule
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&r); err != nil {
			var id struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(raw, &id)
			return nil, fmt.Errorf("rules[%d] (%q): %w", i, id.ID, jsonProblem(raw, err))
		}
		if r == nil {
			return nil, fmt.Errorf("rules[%d] is empty", i)
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("rules[%d] (%q): %w", i, r.ID, err)
		}
		if out.byID[r.ID] != nil {
			return nil, fmt.Errorf("rules[%d]: rule id %q used twice", i, r.ID)
		}
		out.byID[r.ID] = r
		out.list = append(out.list, r)
	}
	return out, nil
}

// jsonProblem says where a JSON error is: the field of a wrong type, or the line of a syntax
// error.
func jsonProblem(b []byte, err error) error {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("field %s: %s is not a %s", typ.Field, typ.Value, typ.Type)
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: %w", 1+bytes.Count(b[:min(int(syn.Offset), len(b))], []byte("\n")), err)
	}
	return err
}

func (r *Rule) check() error {
	if !isRuleID(r.ID) {
		return errors.New("field id: must be 1 to 64 characters a-z, 0-9 and '-'")
	}
	k, ok := kindOf(r.Fact)
	if !ok || (k != coordinationv1.EventKind_EVENT_KIND_DEPARTED && k != coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT) {
		return fmt.Errorf("field fact: must be DEPARTED or EMPLOYMENT_CHECKPOINT, not %q", r.Fact)
	}
	r.fact = k
	switch {
	case k == coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT && (r.MinMonthsEmployed < 1 || r.MinMonthsEmployed > 120):
		return fmt.Errorf("field min_months_employed: must be 1 to 120 for an EMPLOYMENT_CHECKPOINT fact, not %d", r.MinMonthsEmployed)
	case k == coordinationv1.EventKind_EVENT_KIND_DEPARTED && r.MinMonthsEmployed != 0:
		return errors.New("field min_months_employed: only for EMPLOYMENT_CHECKPOINT facts (leave it out for DEPARTED)")
	}
	r.disq = map[coordinationv1.EventKind]bool{}
	for _, s := range r.DisqualifiedBy {
		d, ok := kindOf(s)
		if !ok {
			return fmt.Errorf("field disqualified_by: unknown event kind %q", s)
		}
		r.disq[d] = true
	}
	if r.OncePer != OncePerYear && r.OncePer != OncePerEver {
		return fmt.Errorf("field once_per: must be %q or %q, not %q", OncePerYear, OncePerEver, r.OncePer)
	}
	return nil
}

func isRuleID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Get returns the rule with id.
func (rs *Rules) Get(id string) (*Rule, bool) {
	r, ok := rs.byID[id]
	return r, ok
}

// IDs returns the rules' ids in file order.
func (rs *Rules) IDs() []string {
	ids := make([]string, len(rs.list))
	for i, r := range rs.list {
		ids[i] = r.ID
	}
	return ids
}

// Proto returns the rules as the API states them.
func (rs *Rules) Proto() []*coordinationv1.SubsidyRule {
	out := make([]*coordinationv1.SubsidyRule, len(rs.list))
	for i, r := range rs.list {
		p := &coordinationv1.SubsidyRule{Id: r.ID, Title: r.Title, Fact: r.fact, RegisteredPoor: r.RegisteredPoor,
			OutOfProvince: r.OutOfProvince, MinMonthsEmployed: r.MinMonthsEmployed,
			DisqualifyOnlyBeforeFact: r.DisqualifyOnlyBeforeFact, OncePer: r.OncePer}
		for _, s := range r.DisqualifiedBy {
			k, _ := kindOf(s)
			p.DisqualifiedBy = append(p.DisqualifiedBy, k)
		}
		out[i] = p
	}
	return out
}
