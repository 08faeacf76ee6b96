package receiving

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"
	"golang.org/x/text/width"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/apierror"
	"github.com/eastwest/labourlink/services/privacy"
	"github.com/eastwest/labourlink/services/store"
)

// Vacancy imports (ImportVacancies).
//
// Each message of the stream (a chunk of at most maxImportChunk rows) is validated row by row
// and committed in one transaction: good rows become vacancies (each a change in the demand
// feed), bad rows are recorded as rejections. The import is keyed by its import id in
// BucketImports:
//
//	"s" + import_id                      -> ImportSummary (counts so far, no rejections)
//	"c" + import_id                      -> present once the stream ended with a reply
//	"r" + import_id + 0x00 + row_number  -> the vacancy id the row created ("" if rejected)
//
// and the rejections in BucketImportRejections under import_id + 0x00 + row_number (read in row
// order by GetVacancyImport and ListVacancyImportRejections). A row
// number already seen in the import is skipped, so re-sending an import whose stream was cut
// completes it without duplicates, and re-sending a completed import changes nothing and
// returns the same summary. Row numbers must therefore be unique within an import (the CLI
// sends the spreadsheet row numbers).

// maxImportChunk is the most rows one ImportVacancies message may carry.
const maxImportChunk = 5000

// Page sizes of ListVacancyImportRejections.
const (
	defaultRejectionsPage = 1000
	maxRejectionsPage     = 10000
)

// DefaultImportReplyRejections is the most rejections a vacancy import summary lists (the
// ImportVacancies reply and GetVacancyImport) unless Config.ImportReplyRejections says
// otherwise; the rest are counted (rejections_truncated) and read with
// ListVacancyImportRejections.
const DefaultImportReplyRejections = 10000

func importKey(kind byte, id string) []byte {
	return append([]byte{kind}, id...)
}

func importRowKey(id string, row int64) []byte {
	k := importKey('r', id)
	k = append(k, 0)
	return append(k, store.Uint64Key(uint64(row))...)
}

func rejectionKey(id string, row int64) []byte {
	k := append([]byte(id), 0)
	return append(k, store.Uint64Key(uint64(row))...)
}

// ImportVacancies imports vacancy rows chunk by chunk.
func (x *vacancyServer) ImportVacancies(stream receivingv1.VacancyService_ImportVacanciesServer) error {
	s := x.s
	importID := ""
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if importID == "" {
			importID = req.GetImportId()
		} else if req.GetImportId() != importID {
			var v apierror.Violations
			v.Add("import_id", fmt.Sprintf("must be the same on every message of the stream (%q, then %q)", importID, req.GetImportId()))
			return v.Err()
		}
		if err := s.importChunk(importID, req.GetRows()); err != nil {
			return err
		}
	}
	if importID == "" {
		var v apierror.Violations
		v.Add("import_id", "is required: the stream sent no message")
		return v.Err()
	}
	summary, err := s.finishImport(importID)
	if err != nil {
		return err
	}
	return stream.SendAndClose(&receivingv1.ImportVacanciesResponse{Summary: summary})
}

// importChunk validates and stores one chunk of rows in one transaction.
func (s *Service) importChunk(importID string, rows []*receivingv1.VacancyRow) error {
	return s.update(func(tx *bbolt.Tx) error {
		imports := tx.Bucket(store.BucketImports)
		if imports.Get(importKey('c', importID)) != nil {
			return nil // a completed import: the rows change nothing
		}
		sum := &commonv1.ImportSummary{}
		if _, err := store.GetProto(imports, importKey('s', importID), sum); err != nil {
			return err
		}
		sum.ImportId = importID
		now := s.now()
		for _, row := range rows {
			n := row.GetRowNumber()
			if n >= 1 && imports.Get(importRowKey(importID, n)) != nil {
				continue // sent before (a resumed import)
			}
			sum.RowsReceived++
			in, rej := s.parseVacancyRow(row)
			if rej != nil {
				sum.Rejected++
				if n >= 1 {
					if err := imports.Put(importRowKey(importID, n), []byte{}); err != nil {
						return err
					}
				}
				if err := store.PutProto(tx.Bucket(store.BucketImportRejections), rejectionKey(importID, n), rej); err != nil {
					return err
				}
				continue
			}
			v, err := s.createVacancy(tx, in, now)
			if err != nil {
				return err
			}
			sum.Created++
			if err := imports.Put(importRowKey(importID, n), []byte(v.GetVacancyId())); err != nil {
				return err
			}
		}
		return store.PutProto(imports, importKey('s', importID), sum)
	})
}

// finishImport marks the import complete and returns its summary with the first rejections.
func (s *Service) finishImport(importID string) (*commonv1.ImportSummary, error) {
	sum := &commonv1.ImportSummary{ImportId: importID}
	err := s.update(func(tx *bbolt.Tx) error {
		imports := tx.Bucket(store.BucketImports)
		if _, err := store.GetProto(imports, importKey('s', importID), sum); err != nil {
			return err
		}
		sum.ImportId = importID
		if err := store.PutProto(imports, importKey('s', importID), sum); err != nil {
			return err
		}
		if err := imports.Put(importKey('c', importID), []byte{}); err != nil {
			return err
		}
		var more []byte
		var err error
		sum.Rejections, more, err = readRejections(tx, importID, nil, s.cfg.ImportReplyRejections)
		sum.RejectionsTruncated = more != nil
		return err
	})
	return sum, err
}

// readRejections returns up to limit rejections of import importID in row order, starting
// after the row key suffix after (nil for the first), and the key suffix of the last one
// returned when more follow (nil on the last page).
func readRejections(tx *bbolt.Tx, importID string, after []byte, limit int) ([]*commonv1.RowRejection, []byte, error) {
	prefix := append([]byte(importID), 0)
	c := tx.Bucket(store.BucketImportRejections).Cursor()
	var out []*commonv1.RowRejection
	var last []byte
	for k, data := c.Seek(append(bytes.Clone(prefix), startAfter(after)...)); k != nil && len(k) == len(prefix)+8 && bytes.HasPrefix(k, prefix); k, data = c.Next() {
		if len(out) == limit {
			return out, last, nil
		}
		r := &commonv1.RowRejection{}
		if err := proto.Unmarshal(data, r); err != nil {
			return nil, nil, fmt.Errorf("decode rejection: %w", err)
		}
		out = append(out, r)
		last = append(last[:0], k[len(prefix):]...)
	}
	return out, nil, nil
}

// rejectionsFilters bind a ListVacancyImportRejections page token to its import.
func rejectionsFilters(importID string) []string { return []string{"import rejections", importID} }

// GetVacancyImport returns the summary of an import (also of one whose stream was cut) and
// whether it completed.
func (x *vacancyServer) GetVacancyImport(_ context.Context, req *receivingv1.GetVacancyImportRequest) (*receivingv1.GetVacancyImportResponse, error) {
	id := req.GetImportId()
	resp := &receivingv1.GetVacancyImportResponse{}
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		imports := tx.Bucket(store.BucketImports)
		sum := &commonv1.ImportSummary{}
		if ok, err := store.GetProto(imports, importKey('s', id), sum); err != nil {
			return err
		} else if !ok {
			return apierror.NotFound("vacancy import %q not found", id)
		}
		sum.ImportId = id
		var more []byte
		var err error
		if sum.Rejections, more, err = readRejections(tx, id, nil, x.s.cfg.ImportReplyRejections); err != nil {
			return err
		}
		sum.RejectionsTruncated = more != nil
		resp.Summary = sum
		resp.Complete = imports.Get(importKey('c', id)) != nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListVacancyImportRejections pages through every rejected row of an import in row order.
func (x *vacancyServer) ListVacancyImportRejections(_ context.Context, req *receivingv1.ListVacancyImportRejectionsRequest) (*receivingv1.ListVacancyImportRejectionsResponse, error) {
	id := req.GetImportId()
	after, err := decodePageToken(req.GetPageToken(), rejectionsFilters(id)...)
	if err != nil {
		return nil, err
	}
	if after != nil && len(after) != 8 {
		return nil, pageTokenError("is not a token returned by this service")
	}
	size := pageSize(req.GetPageSize(), defaultRejectionsPage, maxRejectionsPage)
	resp := &receivingv1.ListVacancyImportRejectionsResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(store.BucketImports).Get(importKey('s', id)) == nil {
			return apierror.NotFound("vacancy import %q not found", id)
		}
		rjs, last, err := readRejections(tx, id, after, size)
		if err != nil {
			return err
		}
		resp.Rejections = rjs
		if last != nil {
			resp.NextPageToken = encodePageToken(last, rejectionsFilters(id)...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// parseVacancyRow turns a text row into a vacancy, or returns the row's rejection: the first
// bad field, with every other problem of the row appended to the reason.
func (s *Service) parseVacancyRow(row *receivingv1.VacancyRow) (*receivingv1.Vacancy, *commonv1.RowRejection) {
	var vs apierror.Violations
	if row.GetRowNumber() < 1 {
		vs.Add("row_number", fmt.Sprintf("must be 1 or more (the spreadsheet row), got %d", row.GetRowNumber()))
	}
	// A row holding an identity number is rejected for that alone: the other checks quote the
	// values they refuse, and rejections are stored and sent back.
	var ids apierror.Violations
	privacy.Scan(&ids, "", row, personalData)
	if ids.Len() > 0 {
		return nil, rejection(row.GetRowNumber(), ids.List())
	}
	v := &receivingv1.Vacancy{
		EmployerName:       row.GetEmployerName(),
		EmployerCreditCode: row.GetEmployerCreditCode(),
		WorkCounty:         row.GetWorkCounty(),
		Occupation:         row.GetOccupation(),
		Contact:            row.GetContact(),
	}
	normalizeVacancy(v)
	bad := map[string]bool{}
	num := func(field, text string, optional bool, dst *int32) {
		t := strings.ReplaceAll(width.Narrow.String(strings.TrimSpace(text)), ",", "")
		if t == "" && optional {
			return
		}
		n, err := strconv.ParseInt(t, 10, 32)
		if err != nil {
			if t == "" {
				vs.Add(field, "is required")
			} else {
				vs.Add(field, fmt.Sprintf("%q is not a whole number", text))
			}
			bad[field] = true
			return
		}
		*dst = int32(n)
	}
	num("headcount", row.GetHeadcount(), false, &v.Headcount)
	num("wage_min", row.GetWageMin(), false, &v.WageMin)
	num("wage_max", row.GetWageMax(), false, &v.WageMax)
	num("min_age", row.GetMinAge(), true, &v.MinAge)
	num("max_age", row.GetMaxAge(), true, &v.MaxAge)
	date := func(field, text string, dst **commonv1.Date) {
		t := strings.TrimSpace(text)
		if t == "" {
			vs.Add(field, "is required (YYYY-MM-DD)")
			bad[field] = true
			return
		}
		d, err := parseDate(t)
		if err != nil {
			vs.Add(field, err.Error())
			bad[field] = true
			return
		}
		*dst = d
	}
	date("start_date", row.GetStartDate(), &v.StartDate)
	date("valid_through", row.GetValidThrough(), &v.ValidThrough)
	flag := func(field, text string, dst *bool) {
		b, ok := parseBool(text)
		if !ok {
			vs.Add(field, fmt.Sprintf("%q is not yes or no (true/false, 1/0, 是/否)", text))
			return
		}
		*dst = b
	}
	flag("housing_provided", row.GetHousingProvided(), &v.HousingProvided)
	flag("meals_provided", row.GetMealsProvided(), &v.MealsProvided)

	// The vacancy checks, skipping fields that could not be parsed (already reported).
	var checks apierror.Violations
	s.checkVacancy(&checks, "", v, true)
	for _, fv := range checks.List() {
		if !bad[fv.Field] && !(fv.Field == "valid_through" && (bad["start_date"] || bad["valid_through"])) &&
			!(fv.Field == "wage_max" && bad["wage_min"]) && !(fv.Field == "max_age" && bad["min_age"]) {
			vs.Add(fv.Field, fv.Description)
		}
	}
	list := vs.List()
	if len(list) == 0 {
		return v, nil
	}
	return nil, rejection(row.GetRowNumber(), list)
}

// rejection names the first bad field of a row and lists every problem in the reason.
func rejection(row int64, list []apierror.FieldViolation) *commonv1.RowRejection {
	reason := list[0].Description
	if len(list) > 1 {
		var more []string
		for _, fv := range list[1:] {
			more = append(more, fv.Field+": "+fv.Description)
		}
		reason += "; also " + strings.Join(more, "; ")
	}
	return &commonv1.RowRejection{RowNumber: row, Field: list[0].Field, Reason: reason}
}

// parseBool reads the yes/no forms of spreadsheets; empty is no.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(width.Narrow.String(strings.TrimSpace(s))) {
	case "", "false", "0", "no", "n", "否", "无", "不提供":
		return false, true
	case "true", "1", "yes", "y", "是", "有", "提供":
		return true, true
	}
	return false, false
}
