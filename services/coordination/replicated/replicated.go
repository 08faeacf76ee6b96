// Package replicated is the coordination service's replicated mode (issue 16,
// docs/replication.md): its writes go through a replicated command log (services/platform/replog,
// NATS JetStream with three replicas) that every node applies, in the log's order, to its own
// bbolt file; every node answers reads from its file.
//
// A Writer is the store.Writer of a node. Write turns a mutation into a command (method,
// request bytes, the time this node chose, an id), appends it, and waits until this node's own
// applier has applied it; the answer is what that application produced. Run is the applier:
// each command is applied by its store.Mutation (found by method) in one bbolt transaction that
// also stores the command's sequence, so a node restarted on its file resumes exactly after the
// last command it applied, and no command is applied twice. A command the domain refuses
// (INVALID_ARGUMENT, NOT_FOUND, ...) changes nothing on any node, and its sequence is stored as
// applied all the same; any other failure (the disk) stops the applier, and the node with it,
// rather than let its file differ from the others'.
package replicated

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/replog"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Buckets are the replicated mode's buckets in the coordination file:
//
//	replication  "applied" -> sequence(8)  the last command of the log applied to this file
var Buckets = [][]byte{bucketReplication}

var (
	bucketReplication = []byte("replication")
	keyApplied        = []byte("applied")
)

// Applied returns the sequence of the last command applied to db (0: none).
func Applied(db *store.DB) (uint64, error) {
	var seq uint64
	err := db.View(func(tx *bbolt.Tx) error {
		seq = appliedIn(tx)
		return nil
	})
	return seq, err
}

func appliedIn(tx *bbolt.Tx) uint64 {
	b := tx.Bucket(bucketReplication)
	if b == nil {
		return 0
	}
	v := b.Get(keyApplied)
	if len(v) != 8 {
		return 0
	}
	return store.KeyUint64(v)
}

func putApplied(tx *bbolt.Tx, seq uint64) error {
	b, err := tx.CreateBucketIfNotExists(bucketReplication)
	if err != nil {
		return err
	}
	return b.Put(keyApplied, store.Uint64Key(seq))
}

// BarrierMethod names the write a node makes to catch up (CatchUp): it changes nothing.
const BarrierMethod = "/labourlink.coordination.internal/Barrier"

// Writer is a node's store.Writer over the replicated log, and its applier.
type Writer struct {
	log  *replog.Log
	db   *store.DB
	node string
	lg   *zap.Logger

	byMethod map[string]*store.Mutation
	barrier  *store.Mutation

	mu      sync.Mutex
	waiting map[string]*waiter // by the command's Nats-Msg-Id
}

// waiter is a Write waiting for its command's application on this node.
type waiter struct {
	done chan struct{}
	resp proto.Message
	err  error
	n    int // the Writes sharing it
}

// New returns the writer of node (its replica name, for the ids of its commands) over log,
// applying to db with mutations (coordination.Service.Mutations).
func New(log *replog.Log, db *store.DB, node string, lg *zap.Logger, mutations []*store.Mutation) (*Writer, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	w := &Writer{log: log, db: db, node: node, lg: lg, byMethod: map[string]*store.Mutation{}, waiting: map[string]*waiter{}}
	w.barrier = store.NewMutation(BarrierMethod, func(*bbolt.Tx, time.Time, *emptypb.Empty, *emptypb.Empty) error { return nil })
	for _, m := range append(mutations, w.barrier) {
		if _, dup := w.byMethod[m.Method()]; dup {
			return nil, fmt.Errorf("replicated: mutation %s given twice", m.Method())
		}
		w.byMethod[m.Method()] = m
	}
	return w, nil
}

// maxAppendRounds bounds the appends of one Write (see Write).
const maxAppendRounds = 3

// Write appends m's command and returns once this node has applied it, with resp as the
// application filled it (store.Writer).
//
// A command whose id the log has seen within its duplicate window is not stored again: the log
// answers with the first one's sequence. When that one was applied before this Write began to
// wait (a client's retry of a request id), the answer is the one remembered for the request id;
// when none was remembered (the first was refused: nothing is remembered for a refusal), the
// command is appended once more under an id of its own, and the answer is that application's,
// as a retry would get in one process. An internal write of a fixed id (Mutation.WithID) found
// applied is done, its response left empty: another node, or this one before a restart, made
// it.
func (w *Writer) Write(ctx context.Context, m *store.Mutation, now time.Time, req, resp proto.Message) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return fmt.Errorf("replicated: encode %s: %w", m.Method(), err)
	}
	id := m.ID(req)
	if id == "" {
		id = w.node + "/" + randomID()
	}
	for round := 1; round <= maxAppendRounds; round++ {
		cmd := replog.Command{Method: m.Method(), ID: id, Request: b, UnixNano: now.UnixNano()}
		wt := w.wait(cmd.MsgID())
		seq, err := w.log.Append(ctx, cmd)
		if err == nil {
			err = w.log.WaitApplied(ctx, seq)
		}
		if err != nil {
			w.unwait(cmd.MsgID(), wt)
			if errors.Is(err, replog.ErrApplyStopped) {
				return apierror.Unavailable("this coordination node has stopped applying the replicated log: %v", err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return apierror.Unavailable("the replicated log did not take the write (%s); it is safe to retry", err)
		}
		select {
		case <-wt.done:
			if wt.err != nil {
				return wt.err
			}
			proto.Reset(resp)
			proto.Merge(resp, wt.resp)
			return nil
		default:
		}
		// Applied before this Write waited for it: the log's answer to a repeat.
		w.unwait(cmd.MsgID(), wt)
		var found bool
		if err := w.db.View(func(tx *bbolt.Tx) (err error) {
			found, err = store.Recall(tx, m.Method(), req, resp)
			return err
		}); err != nil {
			return err
		}
		if found {
			return nil
		}
		if store.RequestID(req) == "" {
			// An internal write of a fixed id (Mutation.WithID: the default pairings at start,
			// a deadline's step) is one write whichever node makes it: another node, or this
			// one before a restart, made it, and it is done. Appending it again under another
			// id would meet the other nodes' same attempts.
			return nil
		}
		id = fmt.Sprintf("%s@%d", id, seq)
	}
	return apierror.Unavailable("the replicated log answered %s with earlier commands %d times; retry", m.Method(), maxAppendRounds)
}

// wait registers interest in the application of the command of msgID.
func (w *Writer) wait(msgID string) *waiter {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := w.waiting[msgID]
	if wt == nil {
		wt = &waiter{done: make(chan struct{})}
		w.waiting[msgID] = wt
	}
	wt.n++
	return wt
}

// unwait drops interest that will not be served.
func (w *Writer) unwait(msgID string, wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt.n--; wt.n == 0 && w.waiting[msgID] == wt {
		delete(w.waiting, msgID)
	}
}

// deliver gives the waiters of msgID the outcome of its application.
func (w *Writer) deliver(msgID string, resp proto.Message, err error) {
	w.mu.Lock()
	wt := w.waiting[msgID]
	delete(w.waiting, msgID)
	w.mu.Unlock()
	if wt != nil {
		wt.resp, wt.err = resp, err
		close(wt.done)
	}
}

// Run applies the log to the node's file from the last command applied to it, until ctx ends
// or the node cannot apply (see the package comment).
func (w *Writer) Run(ctx context.Context) error {
	from, err := Applied(w.db)
	if err != nil {
		return err
	}
	w.lg.Info("applying the replicated log", zap.Uint64("from", from))
	return w.log.Apply(ctx, from, w.apply)
}

// CatchUp applies the log until this node has applied everything appended before it was
// called (it appends a barrier and waits for it), runs then (the writes a node makes at start,
// such as the default pairings) while it still applies, and stops; Run goes on from there.
func (w *Writer) CatchUp(ctx context.Context, then func(context.Context) error) error {
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(actx) }()
	err := w.Write(ctx, w.barrier, time.Now(), &emptypb.Empty{}, &emptypb.Empty{})
	if err == nil && then != nil {
		err = then(ctx)
	}
	cancel()
	if rerr := <-done; err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = rerr
	}
	return err
}

// apply applies one command of the log (replog.Log.Apply's fn).
func (w *Writer) apply(seq uint64, cmd replog.Command) error {
	m := w.byMethod[cmd.Method]
	if m == nil {
		// A command of a newer version of the service: applying the rest without it would make
		// this file differ from the others'. Stop; the node needs the new version.
		return fmt.Errorf("replicated: no mutation %s (sequence %d): is this node older than the one that appended it?", cmd.Method, seq)
	}
	req, resp := m.NewRequest(), m.NewResponse()
	var err error
	if uerr := proto.Unmarshal(cmd.Request, req); uerr != nil {
		err = apierror.InvalidArgument("the command's request does not decode as %T: %v", req, uerr)
	} else {
		err = w.db.Update(func(tx *bbolt.Tx) error {
			if err := m.Apply(tx, cmd.Time(), req, resp); err != nil {
				return err
			}
			return putApplied(tx, seq)
		})
	}
	if err != nil {
		if !refused(err) {
			return err
		}
		// Refused by the domain on every node alike: nothing changed; the command is done.
		if perr := w.db.Update(func(tx *bbolt.Tx) error { return putApplied(tx, seq) }); perr != nil {
			return perr
		}
		w.deliver(cmd.MsgID(), nil, err)
		return nil
	}
	m.Committed(resp)
	w.deliver(cmd.MsgID(), resp, nil)
	return nil
}

// refused reports whether err is the domain's answer to the command (the same on every node,
// from the same state), not a failure of this node.
func refused(err error) bool {
	switch apierror.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.OutOfRange, codes.PermissionDenied, codes.Aborted:
		return true
	}
	return false
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
