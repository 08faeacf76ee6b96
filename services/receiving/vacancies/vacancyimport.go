package vacancies

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"golang.org/x/text/width"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/clientstream"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/privacy"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
)

// Vacancy imports (ImportVacancies).
//
// Each message of the stream (a chunk of at most MaxImportChunk rows) is validated row by row
// and committed in one transaction: good rows become vacancies (each a change in the demand
// feed), or update the vacancy of their (employer_credit_code, external_reference) when it
// exists (the rule update, with every changeable field), bad rows are recorded as rejections. The import is keyed by its import id in
// BucketImports:
//
//	"s" + import_id                      -> ImportSummary (counts so far, no rejections)
//	"c" + import_id                      -> present once the import is complete
//	"l" + import_id                      -> big-endian row number of the last row committed
//	"r" + import_id + 0x00 + row_number  -> the vacancy id the row created or updated ("" if rejected)
//	"v" + import_id                      -> present if the import compares rows sent again
//	"h" + import_id + 0x00 + row_number  -> store.Fingerprint of the row (imports with "v")
//
// and the rejections in BucketImportRejections under import_id + 0x00 + row_number (read in row
// order by GetVacancyImport and ListVacancyImportRejections). A row number already seen in the
// import is skipped, so re-sending an import whose stream was cut completes it without
// duplicates, and re-sending a completed import changes nothing and returns the same summary
// to its final message. Row numbers must therefore be unique within an import
// (the CLI sends the spreadsheet row numbers).
//
// A row sent again under a row number the import has is compared with the row committed under
// it (its fingerprint, "h": 32 bytes a row beside the "r" key the import keeps anyway), and a
// complete import takes no new rows: a used import id with other content is INVALID_ARGUMENT on
// import_id, refused with the whole message (one transaction), so that a complete import, or
// rows sent again before new ones, change nothing. Imports begun before rows were compared have
// no "v" key and are not compared, as before.
//
// Only the message marked final completes an import, in the transaction of its rows, and only
// if the import's rows_received (each row counted once over all its streams) is its total_rows;
// otherwise the rows are kept and the message is refused (INVALID_ARGUMENT on total_rows).
// Messages after the final one are not read. A stream that ends any other way (a half-close
// without a final message, a cancel, reset or deadline, the server draining) keeps the chunks it
// committed and leaves the import incomplete and resumable. Messages are received in a goroutine
// of their own (services/platform/clientstream), so that a stream waiting for its client ends at once when
// the server begins its graceful stop.

// MaxImportChunk is the most rows one ImportVacancies message may carry.
const MaxImportChunk = 5000

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

func importRowDigestKey(id string, row int64) []byte {
	k := importKey('h', id)
	k = append(k, 0)
	return append(k, store.Uint64Key(uint64(row))...)
}

func rejectionKey(id string, row int64) []byte {
	k := append([]byte(id), 0)
	return append(k, store.Uint64Key(uint64(row))...)
}

// vacancyImport is where an import stands.
type vacancyImport struct {
	summary  *commonv1.ImportSummary // counts, without rejections
	lastRow  int64                   // row number of the last row committed (0: none)
	complete bool
	compared bool // rows sent again are compared with those on disk ("v"; new imports are)
}

// readVacancyImport reads import id in tx; found is false if no chunk of it was committed.
func readVacancyImport(tx *bbolt.Tx, id string) (vacancyImport, bool, error) {
	imports := tx.Bucket(importsBucket)
	im := vacancyImport{summary: &commonv1.ImportSummary{}, compared: true}
	sum, found, err := importSummaries.Get(tx, importKey('s', id))
	if err != nil || !found {
		return im, found, err
	}
	im.compared = imports.Get(importKey('v', id)) != nil
	im.summary = sum
	im.summary.ImportId = id
	if v := imports.Get(importKey('l', id)); len(v) == 8 {
		im.lastRow = int64(binary.BigEndian.Uint64(v))
	}
	im.complete = imports.Get(importKey('c', id)) != nil
	return im, true, nil
}

// saveVacancyImport stores where import id stands, in tx.
func saveVacancyImport(tx *bbolt.Tx, id string, im vacancyImport) error {
	if err := importSummaries.Put(tx, importKey('s', id), im.summary); err != nil {
		return err
	}
	imports := tx.Bucket(importsBucket)
	if err := imports.Put(importKey('l', id), binary.BigEndian.AppendUint64(nil, uint64(im.lastRow))); err != nil {
		return err
	}
	if im.compared {
		if err := imports.Put(importKey('v', id), []byte{}); err != nil {
			return err
		}
	}
	if im.complete {
		return imports.Put(importKey('c', id), []byte{})
	}
	return nil
}

// rowTaken reports whether row n of import id was committed before (rows numbered below 1 are
// never recorded: they are rejected).
func rowTaken(tx *bbolt.Tx, id string, n int64) bool {
	return n >= 1 && tx.Bucket(importsBucket).Get(importRowKey(id, n)) != nil
}

// takeRow records row n of import id in tx: the vacancy id it created, or its rejection, and
// the row's fingerprint fp (nil: the import does not compare rows).
func takeRow(tx *bbolt.Tx, id string, n int64, vacancyID string, rej *commonv1.RowRejection, fp []byte) error {
	if fp != nil && n >= 1 {
		if err := tx.Bucket(importsBucket).Put(importRowDigestKey(id, n), fp); err != nil {
			return err
		}
	}
	if rej != nil {
		if n >= 1 {
			if err := tx.Bucket(importsBucket).Put(importRowKey(id, n), []byte{}); err != nil {
				return err
			}
		}
		return importRejections.Put(tx, rejectionKey(id, n), rej)
	}
	return tx.Bucket(importsBucket).Put(importRowKey(id, n), []byte(vacancyID))
}

// loadVacancyImport is readVacancyImport without found (an import never committed is empty).
func loadVacancyImport(tx *bbolt.Tx, id string) (vacancyImport, error) {
	im, _, err := readVacancyImport(tx, id)
	return im, err
}

// Events of Server.ImportHook (tests).
const (
	ImportMessage = "message"
	ImportEnd     = "end"
)

var errVacancyImportDraining = apierror.Unavailable("the receiving service is stopping; rows received so far are kept: send the import again with the same import_id to finish it")

// nextImportMessage waits for the stream's next message. When the server begins its graceful
// stop first (or had begun it when the previous message was done), it returns UNAVAILABLE.
func (x *Server) nextImportMessage(msgs *clientstream.Reader[*receivingv1.ImportVacanciesRequest]) (*receivingv1.ImportVacanciesRequest, error) {
	select {
	case <-x.Draining: // nil (never ready) unless the server is stopping
		return nil, errVacancyImportDraining
	default:
	}
	select {
	case r := <-msgs.C():
		return r.Msg, r.Err
	case <-x.Draining:
		return nil, errVacancyImportDraining
	}
}

// ImportVacancies imports vacancy rows chunk by chunk.
func (x *Server) ImportVacancies(stream receivingv1.VacancyService_ImportVacanciesServer) error {
	msgs := clientstream.Start(stream.Recv, (*receivingv1.ImportVacanciesRequest).GetFinal)
	defer msgs.Stop()
	importID := ""
	if x.ImportHook != nil {
		defer func() { x.ImportHook(importID, ImportEnd) }()
	}
	for {
		req, err := x.nextImportMessage(msgs)
		if err != nil {
			if importID == "" && errors.Is(err, io.EOF) {
				var v apierror.Violations
				v.Add("import_id", "is required: the stream sent no message")
				return v.Err()
			}
			return x.importEndedEarly(importID, err)
		}
		if importID == "" {
			importID = req.GetImportId()
		} else if req.GetImportId() != importID {
			var v apierror.Violations
			v.Addf("import_id", "must be the same on every message of the stream (%q, then %q)", importID, req.GetImportId())
			return v.Err()
		}
		if p := totalRowsProblem(req); p != "" {
			var v apierror.Violations
			v.Add("total_rows", p)
			return v.Err()
		}
		im, err := x.ImportChunk(importID, req.GetRows(), req.GetFinal(), req.GetTotalRows())
		if err != nil {
			return err
		}
		if im.complete && (req.GetFinal() || !im.compared) {
			// Complete with this message, or before it (a completed import sent again: its rows
			// are compared message by message up to the final one, which gets the summary; one
			// begun before rows were compared gets it at once).
			summary, err := x.importReply(importID)
			if err != nil {
				return err
			}
			return stream.SendAndClose(&receivingv1.ImportVacanciesResponse{Summary: summary})
		}
		if req.GetFinal() {
			x.cfg.Log.Info("vacancy import final message refused: total_rows differs from the rows received",
				zap.String("import_id", importID), zap.Bool("complete", false), zap.Int64("total_rows", req.GetTotalRows()),
				zap.Int64("rows_kept", im.summary.GetRowsReceived()), zap.Int64("last_row", im.lastRow))
			var v apierror.Violations
			v.Addf("total_rows", "is %d but the service has received %d rows of this import (counted once over all its streams); the import stays incomplete and the rows are kept: send the missing rows with the same import_id, and the right total_rows on the final message",
				req.GetTotalRows(), im.summary.GetRowsReceived())
			return v.Err()
		}
		if x.ImportHook != nil {
			x.ImportHook(importID, ImportMessage)
		}
	}
}

// importEndedEarly logs a stream of import importID (empty if it sent no message) that ended
// with err before its final message, and returns the error for the client: for a half-close
// (io.EOF), INVALID_ARGUMENT on final saying how many rows are kept.
func (x *Server) importEndedEarly(importID string, err error) error {
	var im vacancyImport
	if importID != "" {
		var verr error
		if im, verr = feedlog.Load(x.cfg.DB, loadVacancyImport, importID); verr != nil {
			return verr
		}
	}
	x.cfg.Log.Info("import stream ended before its final message", zap.String("import_id", importID),
		zap.Bool("complete", false), zap.Int64("rows_kept", im.summary.GetRowsReceived()),
		zap.Int64("last_row", im.lastRow), zap.Error(err))
	if !errors.Is(err, io.EOF) {
		return err
	}
	var v apierror.Violations
	if im.complete {
		v.Addf("final", "the stream ended without a message marked final; import %q is complete and nothing was changed: its summary is the reply to a final message (GetVacancyImport reads it too)", importID)
		return v.Err()
	}
	v.Addf("final", "the stream ended without a message marked final; the import stays incomplete and its %d rows received so far are kept: send the import again with the same import_id and final=true on its last message to complete it",
		im.summary.GetRowsReceived())
	return v.Err()
}

// totalRowsProblem returns a reason if the total_rows of a final message cannot be a row count.
// Without final, total_rows means nothing and is not looked at.
func totalRowsProblem(req *receivingv1.ImportVacanciesRequest) string {
	if req.GetFinal() && req.GetTotalRows() < 0 {
		return fmt.Sprintf("is %d: with final it is the number of rows of the whole import, 0 or more", req.GetTotalRows())
	}
	return ""
}

// ImportChunk validates and stores one chunk of rows in one transaction. With final, the
// import completes in the same transaction if its rows_received, after the chunk, is
// totalRows. It returns the import as the transaction left it; a completed import is returned
// as it is, the rows changing nothing.
func (x *Server) ImportChunk(importID string, rows []*receivingv1.VacancyRow, final bool, totalRows int64) (vacancyImport, error) {
	var im vacancyImport
	var committed, rejected int // rows this transaction stores, for the metrics
	err := x.cfg.DB.Update(func(tx *bbolt.Tx) error {
		committed, rejected = 0, 0
		var err error
		if im, _, err = readVacancyImport(tx, importID); err != nil {
			return err
		}
		fps, err := compareResent(tx, importID, im, rows)
		if err != nil || im.complete {
			return err
		}
		sum := im.summary
		sum.ImportId = importID
		now := x.now()
		for i, row := range rows {
			n := row.GetRowNumber()
			if rowTaken(tx, importID, n) {
				continue // sent before (a resumed import), and compared
			}
			sum.RowsReceived++
			if n >= 1 {
				im.lastRow = n
			}
			in, rej := x.parseVacancyRow(row)
			vacancyID := ""
			if rej == nil {
				var err error
				if vacancyID, rej, err = x.importRow(tx, sum, n, in, now); err != nil {
					return err
				}
			}
			if rej != nil {
				sum.Rejected++
				rejected++
			} else {
				committed++
			}
			if err := takeRow(tx, importID, n, vacancyID, rej, fps[i]); err != nil {
				return err
			}
		}
		im.complete = final && sum.RowsReceived == totalRows
		return saveVacancyImport(tx, importID, im)
	})
	if err == nil {
		x.cfg.Metrics.ImportRows(metrics.ImportVacancies, committed, rejected)
	}
	return im, err
}

// compareResent compares the rows of a message of import id (where im stands) that the import
// has already with the rows committed under their numbers, and returns the fingerprint of each
// row (nil each when the import does not compare rows). A row that differs, or a new row for a
// complete import, is INVALID_ARGUMENT on import_id: a used import id with other content.
func compareResent(tx *bbolt.Tx, id string, im vacancyImport, rows []*receivingv1.VacancyRow) ([][]byte, error) {
	fps := make([][]byte, len(rows))
	if !im.compared {
		return fps, nil
	}
	imports := tx.Bucket(importsBucket)
	for i, row := range rows {
		fp, err := store.Fingerprint(row)
		if err != nil {
			return nil, err
		}
		fps[i] = fp
		n := row.GetRowNumber()
		if n < 1 {
			continue // never recorded: rejected again, whatever the import
		}
		var v apierror.Violations
		switch want := imports.Get(importRowDigestKey(id, n)); {
		case want != nil && !bytes.Equal(want, fp):
			v.Addf("import_id", "import %q has another row %d on disk: a row sent again under an import id must be the row committed under its number, unchanged (row numbers are unique within an import); a new set of vacancies needs a new import id. Nothing of this message was changed", id, n)
			return nil, v.Err()
		case want == nil && im.complete && !rowTaken(tx, id, n):
			v.Addf("import_id", "import %q is complete and has no row %d: a complete import takes no more rows; a new set of vacancies needs a new import id. Nothing was changed", id, n)
			return nil, v.Err()
		}
	}
	return fps, nil
}

// importRow stores the parsed row n, in: it updates the vacancy of its natural key if there is
// one (counted updated, or unchanged when equal), and creates a vacancy otherwise (counted
// created). It returns the vacancy's id, or the row's rejection when the update is refused.
func (x *Server) importRow(tx *bbolt.Tx, sum *commonv1.ImportSummary, n int64, in *receivingv1.Vacancy, now time.Time) (string, *commonv1.RowRejection, error) {
	id, found := FindByReference(tx, in.GetEmployerCreditCode(), in.GetExternalReference())
	if !found {
		v, err := create(tx, x.cfg.Province.Code, in, now)
		if err != nil {
			return "", nil, err
		}
		sum.Created++
		return v.GetVacancyId(), nil, nil
	}
	old, err := Get(tx, id)
	if err != nil {
		return "", nil, err
	}
	v, changed, err := update(x.cfg.Province, civil.Today(now), old, in, importedFields)
	if err != nil {
		var ve *apierror.ViolationsError
		var list []apierror.FieldViolation
		switch {
		case errors.As(err, &ve):
			for _, f := range ve.Violations() {
				list = append(list, apierror.FieldViolation{Field: rowColumn(strings.TrimPrefix(f.Field, "vacancy.")), Description: f.Description})
			}
		case apierror.IsKnown(err): // the vacancy is closed, or has more positions reserved
			field := "external_reference"
			var ae *apierror.Error
			if errors.As(err, &ae) && ae.ErrorReason() == commonv1.ErrorReason_ERROR_REASON_HEADCOUNT_BELOW_RESERVED {
				field = "headcount"
			}
			list = append(list, apierror.FieldViolation{Field: field,
				Description: fmt.Sprintf("names vacancy %s, which this row cannot update: %v", Name(id), err)})
		default:
			return "", nil, err
		}
		return "", rejection(n, list), nil
	}
	if !changed {
		sum.Unchanged++
		return id, nil, nil
	}
	if err := Save(tx, v, now); err != nil {
		return "", nil, err
	}
	sum.Updated++
	return id, nil, nil
}

// importedFields are the fields an import row sets on the vacancy of its natural key: every
// field UpdateVacancy may change.
var importedFields = []string{"employer_name", "work_county", "occupation", "headcount", "monthly_wage_min_yuan", "monthly_wage_max_yuan",
	"start_date", "valid_through", "min_age", "max_age", "housing_provided", "meals_provided", "contact"}

// importReply returns the summary of an import with its first rejections.
func (x *Server) importReply(importID string) (*commonv1.ImportSummary, error) {
	r, err := feedlog.Load(x.cfg.DB, x.report, importID)
	return r.GetSummary(), err
}

// report reads import id with its first rejections in tx (NOT_FOUND if no chunk of it was
// committed).
func (x *Server) report(tx *bbolt.Tx, id string) (*receivingv1.GetVacancyImportResponse, error) {
	im, found, err := readVacancyImport(tx, id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, apierror.NotFound("vacancy import %q not found", id)
	}
	sum := im.summary
	var more []byte
	if sum.Rejections, more, err = readRejections(tx, id, nil, x.cfg.ImportReplyRejections); err != nil {
		return nil, err
	}
	sum.RejectionsTruncated = more != nil
	return &receivingv1.GetVacancyImportResponse{Summary: sum, Complete: im.complete, LastRowNumber: im.lastRow}, nil
}

// readRejections returns up to limit rejections of import importID in row order, starting
// after the row key suffix after (nil for the first), and the key suffix of the last one
// returned when more follow (nil on the last page).
func readRejections(tx *bbolt.Tx, importID string, after []byte, limit int) ([]*commonv1.RowRejection, []byte, error) {
	prefix := append([]byte(importID), 0)
	r := store.Range{Prefix: prefix}
	if after != nil {
		r.After = append(bytes.Clone(prefix), after...)
	}
	p, err := importRejections.Page(tx, r, limit, func(k []byte, _ *commonv1.RowRejection) bool { return len(k) == len(prefix)+8 })
	if err != nil || p.Last == nil {
		return p.Items, nil, err
	}
	return p.Items, p.Last[len(prefix):], nil
}

// rejectionsListing binds a ListVacancyImportRejections page token to its import; its keys are
// row numbers (8 bytes).
func rejectionsListing(importID string) paging.Listing {
	return paging.For("import rejections", importID).Keys(func(k []byte) bool { return len(k) == 8 })
}

// GetVacancyImport returns the summary of an import (also of one whose stream was cut), whether
// it completed and the last row committed.
func (x *Server) GetVacancyImport(_ context.Context, req *receivingv1.GetVacancyImportRequest) (*receivingv1.GetVacancyImportResponse, error) {
	return feedlog.Load(x.cfg.DB, x.report, req.GetImportId())
}

// ListVacancyImportRejections pages through every rejected row of an import in row order.
func (x *Server) ListVacancyImportRejections(_ context.Context, req *receivingv1.ListVacancyImportRejectionsRequest) (*receivingv1.ListVacancyImportRejectionsResponse, error) {
	id := req.GetImportId()
	after, err := rejectionsListing(id).Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := check.RejectionsSize.Of(req.GetPageSize())
	resp := &receivingv1.ListVacancyImportRejectionsResponse{}
	err = x.cfg.DB.View(func(tx *bbolt.Tx) error {
		if ok, err := importSummaries.Has(tx, importKey('s', id)); err != nil {
			return err
		} else if !ok {
			return apierror.NotFound("vacancy import %q not found", id)
		}
		rjs, last, err := readRejections(tx, id, after, size)
		if err != nil {
			return err
		}
		resp.Rejections = rjs
		if last != nil {
			resp.NextPageToken = rejectionsListing(id).Token(last)
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
func (x *Server) parseVacancyRow(row *receivingv1.VacancyRow) (*receivingv1.Vacancy, *commonv1.RowRejection) {
	var vs apierror.Violations
	if row.GetRowNumber() < 1 {
		vs.Addf("row_number", "must be 1 or more (the spreadsheet row), got %d", row.GetRowNumber())
	}
	// A row holding an identity number is rejected for that alone: the other checks quote the
	// values they refuse, and rejections are stored and sent back.
	var ids apierror.Violations
	privacy.Scan(&ids, "", row, check.PersonalData)
	if ids.Len() > 0 {
		return nil, rejection(row.GetRowNumber(), ids.List())
	}
	v := &receivingv1.Vacancy{
		EmployerName:       row.GetEmployerName(),
		EmployerCreditCode: row.GetEmployerCreditCode(),
		WorkCounty:         row.GetWorkCounty(),
		Occupation:         row.GetOccupation(),
		Contact:            row.GetContact(),
		ExternalReference:  row.GetExternalReference(),
	}
	normalize(v)
	bad := map[string]bool{}
	num := func(field, text string, optional bool, dst *int32) bool {
		t := strings.ReplaceAll(width.Narrow.String(strings.TrimSpace(text)), ",", "")
		if t == "" && optional {
			return false
		}
		n, err := strconv.ParseInt(t, 10, 32)
		if err != nil {
			if t == "" {
				vs.Add(field, "is required")
			} else {
				vs.Addf(field, "%q is not a whole number", text)
			}
			bad[field] = true
			return false
		}
		*dst = int32(n)
		return true
	}
	num("headcount", row.GetHeadcount(), false, &v.Headcount)
	num("wage_min", row.GetMonthlyWageMinYuan(), false, &v.MonthlyWageMinYuan)
	num("wage_max", row.GetMonthlyWageMaxYuan(), false, &v.MonthlyWageMaxYuan)
	var minAge, maxAge int32
	if num("min_age", row.GetMinAge(), true, &minAge) {
		v.MinAge = &minAge
	}
	if num("max_age", row.GetMaxAge(), true, &maxAge) {
		v.MaxAge = &maxAge
	}
	date := func(field, text string, dst **commonv1.Date) {
		t := strings.TrimSpace(text)
		if t == "" {
			vs.Add(field, "is required (YYYY-MM-DD)")
			bad[field] = true
			return
		}
		d, err := civil.Parse(t)
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
			vs.Addf(field, "%q is not yes or no (true/false, 1/0, 是/否)", text)
			return
		}
		*dst = b
	}
	flag("housing_provided", row.GetHousingProvided(), &v.HousingProvided)
	flag("meals_provided", row.GetMealsProvided(), &v.MealsProvided)

	// The vacancy checks, skipping fields that could not be parsed (already reported).
	var checks apierror.Violations
	checkVacancy(&checks, x.cfg.Province, civil.Today(x.now()), "", v, true)
	for _, fv := range checks.List() {
		fv.Field = rowColumn(fv.Field)
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

// rowColumn is the CSV column of a Vacancy field, as rejections name it: the wages keep their
// column names wage_min and wage_max; the other columns are the fields' names.
func rowColumn(field string) string {
	switch field {
	case "monthly_wage_min_yuan":
		return "wage_min"
	case "monthly_wage_max_yuan":
		return "wage_max"
	}
	return field
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
