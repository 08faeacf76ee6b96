package roster

// Bulk import of worker rows (RosterService.ImportWorkers).
//
// The handler receives chunks, validates each row (validateRow) and hands batches of
// importBatchRows rows to a committer goroutine, so that decoding and validation of the next
// batch overlap with the bbolt commit of the previous one. Each batch is ONE bbolt transaction
// that holds, together:
//   - the workers created or updated by the batch's good rows (and their index entries),
//   - the rejections of its bad rows (BucketImportRejections, key import id + row),
//   - the import record (BucketImports): counts so far, the last row number done and,
//     for the batch of the message marked final, complete = true if the import's row count
//     (rows_received, each row counted once over all the import's streams) is the message's
//     total_rows.
//
// Only that message completes an import. A stream that ends any other way (a half-close
// without it, as grpc-js does before it cancels; a cancel, reset or deadline; the server
// draining) commits the rows it received and leaves the import incomplete: GetImport says so,
// and where to resume. A final message whose total_rows disagrees is refused the same way
// (INVALID_ARGUMENT on total_rows), after its rows are committed. Messages after the final one
// are not read; the reply is sent after the final transaction commits.
//
// So a stream cut anywhere leaves the import at a batch boundary: the rows it counts are exactly
// the rows on disk. Re-sending the import skips the rows up to the record's last row number and
// carries on; re-sending a complete import returns the stored summary and changes nothing. The
// rows sent again are compared with those on disk (resentRows): the record keeps a SHA-256 chain
// over the rows committed (rows_digest, O(1) space), and a stream that sends rows at or before
// the last row must send all of them, from the first, unchanged (or none: it starts after the
// last row). Other rows under a used import id are INVALID_ARGUMENT on import_id before anything
// of the stream is committed (rows increase, so the rows sent again come first). Records written
// before the digest existed have none: their imports are not compared, as before.
//
// A person is identified by the identity number. Two rows of one import with the same identity
// number: the later row wins. It is applied after the earlier one like a row of a later import
// (counted as updated, or unchanged if it says the same), which needs no memory of the rows seen
// so far and gives the same roster however the stream was cut and resumed.
//
// Memory does not grow with the roster or with the number of rejected rows: at most two batches
// are held, and rejections go to disk with their batch; the reply carries the first
// rejectionsInReply of them (the rest are read with ListImportRejections). An idle stream holds
// no batch and no committer: both are made when rows arrive. Messages are received in a
// goroutine of their own (services/platform/clientstream) so that a stream waiting for its client ends
// at once when the server begins its graceful stop.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/clientstream"
	"github.com/eastwest/labourlink/services/platform/failpoint"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/privacy"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Import limits.
const (
	// importBatchRows is how many rows one bbolt transaction commits.
	importBatchRows = 5000
	// maxChunkRows is the most rows one ImportWorkersRequest may carry.
	maxChunkRows = 5000
	// rejectionsInReply is how many rejections an import's summary lists at most.
	rejectionsInReply = 1000
)

// WorkerRow field names, as used in rejections.
const (
	fieldIDNumber              = "id_number"
	fieldFullName              = "full_name"
	fieldPhone                 = "phone"
	fieldHomeCounty            = "home_county"
	fieldRegisteredPoor        = "registered_poor"
	fieldOccupations           = "occupations"
	fieldEducation             = "education"
	fieldPreferredDestinations = "preferred_destinations"
	fieldAvailableFrom         = "available_from"
	fieldHealthCheckPassed     = "health_check_passed"
	fieldHealthCheckDate       = "health_check_date"
	fieldSex                   = "sex"
	fieldBirthDate             = "birth_date"
)

// errImportComplete is returned by commitBatch when the import was completed (by another
// stream with the same import id) before this batch.
var errImportComplete = errors.New("import already complete")

// --- row validation ---

// rowResult is one validated row: a worker to store, or the reasons it was rejected.
type rowResult struct {
	number     int64
	idNumber   string            // normalised identity number; "" when rejected
	worker     *sendingv1.Worker // fields from the row; nil when rejected
	rejections []*commonv1.RowRejection
	// createdID and created are the id and encoding of the new worker, should the identity
	// number be new: prepared (fresh worker id, AVAILABLE, timestamps) outside the transaction,
	// so that the commit of a batch only looks up and writes.
	createdID string
	created   []byte
	// digest is the row's store.Fingerprint, chained into the import's rows digest when the
	// row is committed.
	digest []byte
}

// prepareCreate fills row.created for a good row: the worker as it is stored if no worker has its
// identity number yet.
func (s *Service) prepareCreate(row *rowResult, now *timestamppb.Timestamp) error {
	id, err := newWorkerID(s.cfg.Region, now.AsTime())
	if err != nil {
		return err
	}
	// The stored worker is the row's worker with the output fields set; they are set for the
	// encoding only, so that row.worker stays the imported fields (applyRow compares and copies
	// them), without a copy of the whole message per row.
	w := row.worker
	wid, st, ct, ut := w.WorkerId, w.Status, w.CreateTime, w.UpdateTime
	w.WorkerId, w.Status, w.CreateTime, w.UpdateTime = id, stAvailable, now, now
	row.created, err = deterministic.Marshal(w)
	w.WorkerId, w.Status, w.CreateTime, w.UpdateTime = wid, st, ct, ut
	row.createdID = id
	return err
}

// validateRow checks every field of row and returns the worker it describes, or one rejection
// per bad field in column order. importDate is the date on which the age limit is judged (the
// day the import began). Reasons never contain the identity number or the phone number.
func (c checker) validateRow(row *sendingv1.WorkerRow, importDate *commonv1.Date) rowResult {
	res := rowResult{number: row.GetRowNumber()}
	reject := func(field, reason string) {
		res.rejections = append(res.rejections, &commonv1.RowRejection{RowNumber: res.number, Field: field, Reason: reason})
	}
	// Personal data in a column that may not hold it (an identity number as the sex, a phone in
	// the name) rejects the row for that alone: the checks below quote the values they refuse,
	// and rejections are stored and sent back. The grpcserver guard leaves rows to this check
	// (privacy.CheckedPerItem), so that one bad row does not refuse the whole chunk.
	var pd apierror.Violations
	privacy.Scan(&pd, "", row, personalData)
	if pd.Len() > 0 {
		for _, fv := range pd.List() {
			reject(fv.Field, fv.Description)
		}
		return res
	}
	w := &sendingv1.Worker{}

	id := idnumber.Normalize(strings.TrimSpace(row.GetIdNumber()))
	if id == "" {
		reject(fieldIDNumber, "is required: the 18-character resident identity number")
	} else if info, err := idnumber.ParseAt(id, civil.Start(importDate)); err != nil {
		reject(fieldIDNumber, err.Error())
	} else {
		w.IdNumber = id
		w.Sex = sexFromInfo(info.Sex)
		y, m, d := info.BirthDate.Date()
		w.BirthDate = &commonv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
		if age := idnumber.AgeOn(info.BirthDate, dateTime(importDate)); age < minWorkerAge {
			reject(fieldIDNumber, fmt.Sprintf("the worker must be at least %d on the import date %s; the birth date in the identity number gives age %d",
				minWorkerAge, civil.Format(importDate), age))
		}
	}

	var reason string
	if w.FullName, reason = checkFullName(row.GetFullName()); reason != "" {
		reject(fieldFullName, reason)
	}
	if w.Phone, reason = checkPhone(row.GetPhone()); reason != "" {
		reject(fieldPhone, reason)
	}
	if w.HomeCounty, reason = c.homeCounty(row.GetHomeCounty()); reason != "" {
		reject(fieldHomeCounty, reason)
	}
	if w.RegisteredPoor, reason = parseFlag(row.GetRegisteredPoor()); reason != "" {
		reject(fieldRegisteredPoor, reason)
	}
	if w.Occupations, reason = checkOccupations(splitList(row.GetOccupations())); reason != "" {
		reject(fieldOccupations, reason)
	}
	if w.Education, reason = parseEducation(row.GetEducation()); reason != "" {
		reject(fieldEducation, reason)
	}
	if w.PreferredDestinations, reason = c.destinations(splitList(row.GetPreferredDestinations())); reason != "" {
		reject(fieldPreferredDestinations, reason)
	}
	if w.AvailableFrom, reason = parseDate(row.GetAvailableFrom()); reason != "" {
		reject(fieldAvailableFrom, reason)
	}
	passedOK := true
	if w.HealthCheckPassed, reason = parseFlag(row.GetHealthCheckPassed()); reason != "" {
		reject(fieldHealthCheckPassed, reason)
		passedOK = false
	}
	dateOK := true
	if w.HealthCheckDate, reason = parseDate(row.GetHealthCheckDate()); reason != "" {
		reject(fieldHealthCheckDate, reason)
		dateOK = false
	}
	if passedOK && dateOK {
		if reason = checkHealth(w.HealthCheckPassed, w.HealthCheckDate, importDate); reason != "" {
			reject(fieldHealthCheckDate, reason)
		}
	}

	if s := strings.TrimSpace(row.GetSex()); s != "" {
		sex, ok := parseSex(s)
		switch {
		case !ok:
			reject(fieldSex, fmt.Sprintf("%q is not a sex: use M or F (男 or 女), or leave it empty", s))
		case w.Sex != commonv1.Sex_SEX_UNSPECIFIED && sex != w.Sex:
			reject(fieldSex, fmt.Sprintf("says %s but the identity number is a %s's", sexWord(sex), sexWord(w.Sex)))
		}
	}
	if s := strings.TrimSpace(row.GetBirthDate()); s != "" {
		d, reason := parseDate(s)
		switch {
		case reason != "":
			reject(fieldBirthDate, reason)
		case w.BirthDate != nil && !proto.Equal(d, w.BirthDate):
			reject(fieldBirthDate, "does not agree with the birth date in the identity number")
		}
	}

	if len(res.rejections) > 0 {
		return res
	}
	res.idNumber = id
	res.worker = w
	return res
}

func sexWord(s commonv1.Sex) string {
	if s == commonv1.Sex_SEX_FEMALE {
		return "woman"
	}
	return "man"
}

// --- the import record ---

// importRecord is the progress and outcome of one import, stored under its import id in
// BucketImports as a labourlink.storage.v1.ImportRecord (storagev1.ImportRecord): the counts
// (rejections are in their own bucket), whether the import is complete, the row number of the
// last row committed, the day the import began (age limits), the rejections stored (a row may
// have several) and the time of the last write. The message is storage-only, never part of the
// public API. It was encoded by hand with protowire before it was defined; the message keeps
// those field numbers and types (TestImportRecordGolden).
type importRecord struct {
	summary    *commonv1.ImportSummary
	complete   bool
	lastRow    int64
	importDate *commonv1.Date
	entries    int64
	updateTime time.Time
	// digest is the chain over the rows committed (rowsDigestStart, chainRow); nil for a record
	// written before it existed, whose import is not compared when sent again.
	digest []byte
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// stored returns r as it is stored.
func (r *importRecord) stored() *storagev1.ImportRecord {
	return &storagev1.ImportRecord{
		Summary:          r.summary,
		Complete:         r.complete,
		LastRow:          r.lastRow,
		ImportDate:       r.importDate,
		RejectionEntries: r.entries,
		UpdateTime:       timestamppb.New(r.updateTime),
		RowsDigest:       r.digest,
	}
}

func (r *importRecord) marshal() ([]byte, error) {
	return deterministic.Marshal(r.stored())
}

// recordOf returns the import record of a stored one. summary and importDate are never nil;
// updateTime is the zero time when the record has none.
func recordOf(m *storagev1.ImportRecord) importRecord {
	r := importRecord{
		summary:    m.GetSummary(),
		complete:   m.GetComplete(),
		lastRow:    m.GetLastRow(),
		importDate: m.GetImportDate(),
		entries:    m.GetRejectionEntries(),
		digest:     m.GetRowsDigest(),
	}
	if r.summary == nil {
		r.summary = &commonv1.ImportSummary{}
	}
	if r.importDate == nil {
		r.importDate = &commonv1.Date{}
	}
	if m.GetUpdateTime() != nil {
		r.updateTime = m.GetUpdateTime().AsTime()
	}
	return r
}

// unmarshalImportRecord decodes v (see recordOf).
func unmarshalImportRecord(v []byte) (importRecord, error) {
	var m storagev1.ImportRecord
	if err := proto.Unmarshal(v, &m); err != nil {
		return importRecord{summary: &commonv1.ImportSummary{}, importDate: &commonv1.Date{}}, err
	}
	return recordOf(&m), nil
}

// getImportRecord reads the record of import id in tx.
func getImportRecord(tx *bbolt.Tx, id string) (importRecord, bool, error) {
	m, ok, err := imports.Get(tx, []byte(id))
	if err != nil || !ok {
		return importRecord{}, false, err
	}
	return recordOf(m), true, nil
}

func putImportRecord(tx *bbolt.Tx, id string, r importRecord) error {
	return imports.Put(tx, []byte(id), r.stored())
}

// rejectionPrefix is the key prefix of an import's rejections: the import id and a NUL (import
// ids have no control characters, so no id's prefix is another's).
func rejectionPrefix(importID string) []byte {
	return append([]byte(importID), 0)
}

// rejectionKey is rejectionPrefix + big-endian row number + big-endian index of the rejection in
// its row, so that a cursor reads rejections in row order.
func rejectionKey(importID string, row int64, index int) []byte {
	k := rejectionPrefix(importID)
	k = binary.BigEndian.AppendUint64(k, uint64(row))
	return binary.BigEndian.AppendUint16(k, uint16(index))
}

// rejectionCursorLen is the length of the part of a rejection key after the prefix.
const rejectionCursorLen = 8 + 2

// readRejections returns up to limit rejections of import id after the key suffix after (nil for
// the start), and the key suffix of the last one returned if more follow.
func readRejections(tx *bbolt.Tx, importID string, after []byte, limit int) ([]*commonv1.RowRejection, []byte, error) {
	prefix := rejectionPrefix(importID)
	r := store.Range{Prefix: prefix}
	if after != nil {
		r.After = append(slices.Clip(prefix), after...)
	}
	p, err := rejections.Page(tx, r, limit, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, rj := range p.Items {
		// A reason stored before the privacy guard checked rows may quote a value that holds an
		// identity number or a phone (the sex check quotes what it refuses).
		rj.Reason = privacy.Mask(rj.GetReason())
	}
	var last []byte
	if p.Last != nil {
		last = p.Last[len(prefix):]
	}
	return p.Items, last, nil
}

// summaryOf returns the summary of an import as a reply gives it: the counts and the first
// rejectionsInReply rejections.
func summaryOf(tx *bbolt.Tx, importID string, r importRecord) (*commonv1.ImportSummary, error) {
	sum := proto.Clone(r.summary).(*commonv1.ImportSummary)
	sum.ImportId = importID
	rjs, more, err := readRejections(tx, importID, nil, rejectionsInReply)
	if err != nil {
		return nil, err
	}
	sum.Rejections = rjs
	sum.RejectionsTruncated = more != nil
	return sum, nil
}

// --- the import stream ---

// importBatch is a run of validated rows for one transaction. final marks the batch of the
// message marked final: the import completes with it if the import's rows, counted once over
// all its streams, number totalRows.
type importBatch struct {
	rows      []rowResult
	final     bool
	totalRows int64
}

// commitOutcome is what the committer reports when it stops: the record as its last commit left
// it (zero if it committed nothing) or the error that stopped it.
type commitOutcome struct {
	rec importRecord
	err error
}

// workerImport is the state of one import stream: the validated rows not yet handed over and
// the committer. Both are made when they are first needed, so an idle stream holds neither.
type workerImport struct {
	s    *Service
	id   string
	date *commonv1.Date

	pending []rowResult        // validated rows of the next batch; nil until rows arrive
	in      chan importBatch   // to the committer; nil until it starts
	stop    chan struct{}      // closed by the committer when a commit fails
	done    chan commitOutcome // the committer's outcome
}

// flush hands the pending rows to the committer (starting it if need be). It reports false if
// the committer has stopped on an error.
func (w *workerImport) flush(final bool, totalRows int64) bool {
	if w.in == nil {
		w.startCommitter()
	}
	select {
	case w.in <- importBatch{rows: w.pending, final: final, totalRows: totalRows}:
		w.pending = nil
		return true
	case <-w.stop:
		return false
	}
}

// startCommitter starts the goroutine that commits batches in order, one transaction each, so
// that the next batch is validated while the previous one is written.
func (w *workerImport) startCommitter() {
	w.in = make(chan importBatch, 1)
	w.stop = make(chan struct{})
	w.done = make(chan commitOutcome, 1)
	go func() {
		var out commitOutcome
		for b := range w.in {
			if out.err != nil {
				continue // drain after a failure; the receiver stops soon
			}
			rec, err := w.s.commitBatch(w.id, w.date, b)
			switch {
			case err != nil:
				out.err = err
				close(w.stop)
			case len(b.rows) > 0 || b.final:
				out.rec = rec
				failpoint.Inject(failpoint.ImportAfterBatchCommit)
			}
		}
		w.done <- out
	}()
}

// finish waits for the committer to commit what it was given and returns its outcome (zero if
// it never started).
func (w *workerImport) finish() commitOutcome {
	if w.in == nil {
		return commitOutcome{}
	}
	close(w.in)
	return <-w.done
}

// importMessages reads the messages of an import stream; it stops after the message marked
// final, so that messages after it are never read.
type importMessages = clientstream.Reader[*sendingv1.ImportWorkersRequest]

// nextImportMessage waits for the stream's next message. When the server begins its graceful stop first (or
// had begun it when the previous message was done), it returns UNAVAILABLE: a stream waiting
// for a client would otherwise hold the stop until its timeout.
func (s *Service) nextImportMessage(msgs *importMessages) (*sendingv1.ImportWorkersRequest, error) {
	select {
	case <-s.cfg.Draining: // nil (never ready) unless the server is stopping
		return nil, errImportDraining
	default:
	}
	select {
	case r := <-msgs.C():
		return r.Msg, r.Err
	case <-s.cfg.Draining:
		return nil, errImportDraining
	}
}

// Events of Service.importHook (tests).
const (
	importMessage = "message"
	importEnd     = "end"
)

var errImportDraining = apierror.Unavailable("the sending service is stopping; rows received so far are kept: send the import again with the same import_id to finish it")

func (s *Service) importWorkers(stream grpc.ClientStreamingServer[sendingv1.ImportWorkersRequest, sendingv1.ImportWorkersResponse]) error {
	msgs := clientstream.Start(stream.Recv, (*sendingv1.ImportWorkersRequest).GetFinal)
	defer msgs.Stop()
	first, err := s.nextImportMessage(msgs)
	if err == io.EOF {
		var v apierror.Violations
		v.Add("import_id", "is required: the stream carried no message")
		return v.Err()
	}
	if err != nil {
		return err
	}
	importID := first.GetImportId()
	if s.importHook != nil {
		defer s.importHook(importID, importEnd)
	}
	if reason := store.ImportIDProblem(importID); reason != "" {
		var v apierror.Violations
		v.Add("import_id", reason)
		return v.Err()
	}
	if err := checkFinal(first); err != nil {
		return err
	}

	var rec importRecord
	var found bool
	if err := s.db.View(func(tx *bbolt.Tx) error {
		rec, found, err = getImportRecord(tx, importID)
		return err
	}); err != nil {
		return err
	}
	again := &resentRows{importID: importID}
	if found {
		again.want, again.lastRow, again.complete = rec.digest, rec.lastRow, rec.complete
	}
	if found && rec.complete {
		if rec.digest == nil {
			// A completed import of before rows were compared, sent again: the stored outcome,
			// nothing changed. The rest of the stream is not read; the client's next Send ends
			// with io.EOF and CloseAndRecv returns this reply.
			return s.replyStored(stream, importID)
		}
		return s.importAgain(stream, msgs, first, again)
	}
	w := &workerImport{s: s, id: importID, date: civil.Today(s.cfg.Now())}
	var resumeAfter int64
	if found {
		w.date, resumeAfter = rec.importDate, rec.lastRow
	}
	ck := s.checker()

	var streamErr error
	var final *sendingv1.ImportWorkersRequest // the message marked final, once read
	prev := int64(0)
	msg := first
	for {
		if err := checkChunk(msg, importID, &prev); err != nil {
			streamErr = err
			break
		}
		now := timestamppb.New(s.cfg.Now())
		// The pending batch grows with what arrives: an idle stream holds no buffer.
		w.pending = slices.Grow(w.pending, len(msg.GetRows()))
		for _, row := range msg.GetRows() {
			if row.GetRowNumber() <= resumeAfter {
				// Committed by an earlier stream of this import: compared, not imported again.
				if streamErr = again.add(row); streamErr != nil {
					break
				}
				continue
			}
			if streamErr = again.settle(); streamErr != nil {
				break // a reused import id: nothing of this stream was committed
			}
			res := ck.validateRow(row, w.date)
			if res.digest, streamErr = store.Fingerprint(row); streamErr != nil {
				break
			}
			if res.worker != nil {
				if err := s.prepareCreate(&res, now); err != nil {
					streamErr = err
					break
				}
			}
			w.pending = append(w.pending, res)
		}
		if streamErr != nil {
			break
		}
		if msg.GetFinal() {
			if streamErr = again.settle(); streamErr != nil {
				break
			}
			final = msg
			break
		}
		if len(w.pending) >= importBatchRows && !w.flush(false, 0) {
			break
		}
		if s.importHook != nil {
			s.importHook(importID, importMessage)
		}
		msg, err = s.nextImportMessage(msgs)
		if err != nil {
			streamErr = err // io.EOF: a half-close without the final message
			break
		}
	}
	switch {
	case final != nil:
		w.flush(true, final.GetTotalRows())
	case len(w.pending) > 0:
		// Keep what arrived whole: the rows before the break are valid input of this import.
		w.flush(false, 0)
	}
	out := w.finish()
	if out.rec.summary != nil {
		rec = out.rec
	}
	if rec.summary == nil {
		rec.summary = &commonv1.ImportSummary{}
	}

	switch {
	case errors.Is(out.err, errImportComplete):
		return s.replyStored(stream, importID)
	case out.err != nil:
		return out.err
	case streamErr != nil:
		s.lg.Info("import stream ended before its final message",
			zap.String("import_id", importID), zap.Bool("complete", false), zap.Int64("rows_kept", rec.summary.GetRowsReceived()),
			zap.Int64("last_row", rec.lastRow), zap.Error(streamErr))
		if errors.Is(streamErr, io.EOF) {
			var v apierror.Violations
			v.Addf("final", "the stream ended without a message marked final; the import stays incomplete and its %d rows received so far are kept: send the import again with the same import_id and final=true on its last message to complete it",
				rec.summary.GetRowsReceived())
			return v.Err()
		}
		return streamErr
	case !rec.complete:
		s.lg.Info("import final message refused: total_rows differs from the rows received",
			zap.String("import_id", importID), zap.Bool("complete", false), zap.Int64("total_rows", final.GetTotalRows()),
			zap.Int64("rows_kept", rec.summary.GetRowsReceived()), zap.Int64("last_row", rec.lastRow))
		var v apierror.Violations
		v.Addf("total_rows", "is %d but the service has received %d rows of this import (counted once over all its streams); the import stays incomplete and the rows are kept: send the missing rows with the same import_id, and the right total_rows on the final message",
			final.GetTotalRows(), rec.summary.GetRowsReceived())
		return v.Err()
	}
	var sum *commonv1.ImportSummary
	if err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		sum, err = summaryOf(tx, importID, rec)
		return err
	}); err != nil {
		return err
	}
	s.lg.Info("import complete", zap.String("import_id", importID),
		zap.Int64("rows", sum.GetRowsReceived()), zap.Int64("created", sum.GetCreated()),
		zap.Int64("updated", sum.GetUpdated()), zap.Int64("unchanged", sum.GetUnchanged()),
		zap.Int64("rejected", sum.GetRejected()))
	failpoint.Inject(failpoint.ImportBeforeReply)
	return stream.SendAndClose(&sendingv1.ImportWorkersResponse{Summary: sum})
}

// --- an import id used again ---

// rowsDigestStart is the rows digest of an import with no row committed.
func rowsDigestStart() []byte {
	d := sha256.Sum256([]byte("labourlink.ImportRecord.rows_digest"))
	return d[:]
}

// chainRow returns the rows digest after a row with fingerprint row is committed after the rows
// of digest prev.
func chainRow(prev, row []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(row)
	return h.Sum(nil)
}

// resentRows compares the rows a stream sends again under the id of an import (the rows at or
// before the import's last row on disk; row numbers increase, so they come first) with the rows
// on disk, through the import's rows digest: they must be every row on disk, from the first,
// unchanged. A stream that sends none of them (it starts after the last row) is not compared.
// An import whose record has no digest (begun before it existed) is not compared either.
type resentRows struct {
	importID string
	want     []byte // the record's rows digest; nil: not compared
	lastRow  int64  // the record's last row
	complete bool   // the import is complete
	got      []byte // the chain over the rows sent again so far; nil: none
	settled  bool
}

// add chains a row at or before the last row on disk.
func (c *resentRows) add(row *sendingv1.WorkerRow) error {
	if c.want == nil {
		return nil
	}
	fp, err := store.Fingerprint(row)
	if err != nil {
		return err
	}
	if c.got == nil {
		c.got = rowsDigestStart()
	}
	c.got = chainRow(c.got, fp)
	return nil
}

// settle is called when the stream goes past the rows on disk (its first row after the last
// one, or its final message): the rows it sent again must be those on disk. It is
// INVALID_ARGUMENT on import_id when they are not.
func (c *resentRows) settle() error {
	if c.settled || c.want == nil || c.got == nil {
		c.settled = true
		return nil
	}
	c.settled = true
	if bytes.Equal(c.got, c.want) {
		return nil
	}
	var v apierror.Violations
	if c.complete {
		v.Addf("import_id", "import %q is complete with other rows (up to row %d): sent again under its id, an import must be the same rows, all of them from the first, unchanged; a new roster needs a new import id. Nothing was changed",
			c.importID, c.lastRow)
	} else {
		v.Addf("import_id", "import %q has other rows on disk (up to row %d): the rows sent again under its id must be all of them, from the first, unchanged. To resume it, send the same rows again, or only the rows after row %d; a new roster needs a new import id. Nothing was changed",
			c.importID, c.lastRow, c.lastRow)
	}
	return v.Err()
}

// importAgain reads a stream sent under the id of a complete import whose rows are compared
// (resentRows): the same rows again (or none, only a final message) get the stored summary and
// change nothing; other rows, or rows after the import's last row, are INVALID_ARGUMENT on
// import_id. The stream is read up to its final message, as a new import's would be.
func (s *Service) importAgain(stream grpc.ClientStreamingServer[sendingv1.ImportWorkersRequest, sendingv1.ImportWorkersResponse], msgs *importMessages, msg *sendingv1.ImportWorkersRequest, again *resentRows) error {
	prev := int64(0)
	for {
		if err := checkChunk(msg, again.importID, &prev); err != nil {
			return err
		}
		for _, row := range msg.GetRows() {
			if row.GetRowNumber() > again.lastRow {
				if err := again.settle(); err != nil {
					return err
				}
				var v apierror.Violations
				v.Addf("import_id", "import %q is complete (its last row is %d) and takes no more rows: a new roster needs a new import id; nothing was changed",
					again.importID, again.lastRow)
				return v.Err()
			}
			if err := again.add(row); err != nil {
				return err
			}
		}
		if msg.GetFinal() {
			if err := again.settle(); err != nil {
				return err
			}
			return s.replyStored(stream, again.importID)
		}
		if s.importHook != nil {
			s.importHook(again.importID, importMessage)
		}
		var err error
		if msg, err = s.nextImportMessage(msgs); err != nil {
			if errors.Is(err, io.EOF) {
				var v apierror.Violations
				v.Addf("final", "the stream ended without a message marked final; import %q is complete and nothing was changed: its summary is sent in reply to a final message (GetImport reads it too)", again.importID)
				return v.Err()
			}
			return err
		}
	}
}

// totalRowsProblem returns a reason if the total_rows of a final message cannot be a row count.
// Without final, total_rows means nothing and is not looked at.
func totalRowsProblem(msg *sendingv1.ImportWorkersRequest) string {
	if msg.GetFinal() && msg.GetTotalRows() < 0 {
		return fmt.Sprintf("is %d: with final it is the number of rows of the whole import, 0 or more", msg.GetTotalRows())
	}
	return ""
}

// checkFinal checks the end-of-import fields of a message.
func checkFinal(msg *sendingv1.ImportWorkersRequest) error {
	if reason := totalRowsProblem(msg); reason != "" {
		var v apierror.Violations
		v.Add("total_rows", reason)
		return v.Err()
	}
	return nil
}

// checkChunk checks a message of the stream: the import id is the stream's, row numbers start
// at 1 and increase (also across messages; prev is the last row number seen), and total_rows of
// a final message is not negative.
func checkChunk(msg *sendingv1.ImportWorkersRequest, importID string, prev *int64) error {
	var v apierror.Violations
	if msg.GetImportId() != importID {
		v.Add("import_id", "changed within the stream: every message of an import carries the same import_id")
		return v.Err()
	}
	if n := len(msg.GetRows()); n > maxChunkRows {
		v.Addf("rows", "has %d rows; at most %d per message", n, maxChunkRows)
		return v.Err()
	}
	if err := checkFinal(msg); err != nil {
		return err
	}
	for i, row := range msg.GetRows() {
		n := row.GetRowNumber()
		switch {
		case n < 1:
			v.Add(fmt.Sprintf("rows[%d].row_number", i), "must be 1 or more")
		case n <= *prev:
			v.Addf(fmt.Sprintf("rows[%d].row_number", i), "must increase within an import: %d follows %d", n, *prev)
		}
		if v.Len() > 0 {
			return v.Err()
		}
		*prev = n
	}
	return nil
}

// replyStored sends the stored summary of a complete import.
func (s *Service) replyStored(stream grpc.ClientStreamingServer[sendingv1.ImportWorkersRequest, sendingv1.ImportWorkersResponse], importID string) error {
	var sum *commonv1.ImportSummary
	err := s.db.View(func(tx *bbolt.Tx) error {
		rec, found, err := getImportRecord(tx, importID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("import record vanished")
		}
		sum, err = summaryOf(tx, importID, rec)
		return err
	})
	if err != nil {
		return err
	}
	s.lg.Info("import already complete; returned the stored summary", zap.String("import_id", importID))
	return stream.SendAndClose(&sendingv1.ImportWorkersResponse{Summary: sum})
}

// commitBatch applies a batch in one transaction together with the import record. Rows at or
// before the record's last row are skipped (another stream of the same import committed them).
func (s *Service) commitBatch(importID string, importDate *commonv1.Date, b importBatch) (importRecord, error) {
	if len(b.rows) == 0 && !b.final {
		return importRecord{}, nil
	}
	var rec importRecord
	var committed, rejected int // rows this transaction stores, for the metrics
	err := s.db.Update(func(tx *bbolt.Tx) error {
		committed, rejected = 0, 0
		r, found, err := getImportRecord(tx, importID)
		if err != nil {
			return err
		}
		if !found {
			r = importRecord{summary: &commonv1.ImportSummary{ImportId: importID}, importDate: importDate, digest: rowsDigestStart()}
		}
		if r.complete {
			return errImportComplete
		}
		now := s.cfg.Now()
		ts := timestamppb.New(now)
		index, err := openIDIndex(tx)
		if err != nil {
			return err
		}
		rb := rowBuckets{
			workers:   tx.Bucket(BucketWorkers),
			index:     index,
			available: tx.Bucket(BucketAvailableWorkers),
		}
		rb.knownIDs = store.NewLookup(rb.workers)
		if rb.county, err = openCountyBuckets(tx); err != nil {
			return err
		}
		rejections := tx.Bucket(BucketImportRejections)
		for i := range b.rows {
			row := &b.rows[i]
			if row.number <= r.lastRow {
				continue
			}
			if row.worker == nil {
				for j, rj := range row.rejections {
					v, err := deterministic.Marshal(rj)
					if err != nil {
						return err
					}
					if err := rejections.Put(rejectionKey(importID, row.number, j), v); err != nil {
						return err
					}
				}
				r.summary.Rejected++
				rejected++
				r.entries += int64(len(row.rejections))
			} else {
				created, changed, err := s.applyRow(rb, row, ts)
				if err != nil {
					return err
				}
				committed++
				switch {
				case created:
					r.summary.Created++
				case changed:
					r.summary.Updated++
				default:
					r.summary.Unchanged++
				}
			}
			r.summary.RowsReceived++
			r.lastRow = row.number
			if r.digest != nil {
				r.digest = chainRow(r.digest, row.digest)
			}
		}
		// Complete only on the final message, and only if every row of the import has arrived:
		// rows_received counts each row once, however many streams it took.
		r.complete = b.final && r.summary.RowsReceived == b.totalRows
		r.updateTime = now
		rec = r
		return putImportRecord(tx, importID, r)
	})
	if err != nil {
		return importRecord{}, err
	}
	s.cfg.Metrics.ImportRows(metrics.ImportRoster, committed, rejected)
	s.lg.Debug("import batch committed", zap.String("import_id", importID),
		zap.Int("rows", len(b.rows)), zap.Int64("last_row", rec.lastRow), zap.Bool("final", b.final),
		zap.Bool("complete", rec.complete))
	return rec, nil
}

// rowBuckets are the buckets an import row writes, opened once per batch.
type rowBuckets struct {
	workers, available *bbolt.Bucket
	knownIDs           store.Lookup // of workers
	index              idIndex
	county             countyBuckets
}

// applyRow creates the worker of a good row, or updates the worker with its identity number. An
// update changes no status; a new worker is AVAILABLE and enters the index of available workers.
func (s *Service) applyRow(b rowBuckets, row *rowResult, now *timestamppb.Timestamp) (created, changed bool, err error) {
	workers, index := b.workers, b.index
	// A good row has a number, and the import's write transaction has the index's key.
	key := index.hash(row.idNumber)
	if existing := index.getKey(key); existing != "" {
		id := existing
		old := &sendingv1.Worker{}
		ok, err := store.GetProto(workers, []byte(id), old)
		if err != nil {
			return false, false, err
		}
		if !ok {
			return false, false, fmt.Errorf("identity index points to missing worker %s", id)
		}
		if sameImportedFields(old, row.worker) {
			return false, false, nil
		}
		before := &sendingv1.Worker{WorkerId: id, HomeCounty: old.GetHomeCounty(), FullName: old.GetFullName(), Erased: old.GetErased()}
		copyImportedFields(old, row.worker)
		old.UpdateTime = now
		old.WorkerId = id
		if err := b.county.indexCounty(before, old); err != nil {
			return false, false, err
		}
		if old.Etag, err = nextEtag(workers); err != nil {
			return false, false, err
		}
		return false, true, store.PutProto(workers, []byte(id), old)
	}
	id, value := row.createdID, row.created
	for b.knownIDs.Get([]byte(id)) != nil {
		// 32 random bits within a millisecond: a clash is unlikely, but never overwrite a worker.
		w := proto.Clone(row.worker).(*sendingv1.Worker)
		if w.WorkerId, err = newWorkerID(s.cfg.Region, now.AsTime()); err != nil {
			return false, false, err
		}
		w.Status, w.CreateTime, w.UpdateTime = stAvailable, now, now
		if value, err = deterministic.Marshal(w); err != nil {
			return false, false, err
		}
		id = w.WorkerId
	}
	idKey := []byte(id) // bbolt copies the keys it is given
	if err := workers.Put(idKey, value); err != nil {
		return false, false, err
	}
	if err := b.available.Put(idKey, []byte{}); err != nil {
		return false, false, err
	}
	if err := b.county.indexCounty(nil, &sendingv1.Worker{WorkerId: id, HomeCounty: row.worker.GetHomeCounty(), FullName: row.worker.GetFullName()}); err != nil {
		return false, false, err
	}
	return true, false, index.putKey(key, id)
}
