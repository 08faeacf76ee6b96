package store

import (
	"context"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// A Mutation is one kind of write as a function of its request and the time alone: what a
// mutating handler runs inside UpdateOnce. Because nothing else goes in (no clock read, no
// state outside the transaction), the same write can be run again from (method, request bytes,
// time) on another copy of the data, and it changes that copy exactly as it changed the first:
// the replicated coordination service (docs/replication.md) applies every node's writes in one
// order this way. A handler does not call Apply itself; it gives the mutation to its Writer.
type Mutation struct {
	method  string
	newReq  func() proto.Message
	newResp func() proto.Message
	apply   func(tx *bbolt.Tx, now time.Time, req, resp proto.Message) error
	after   func(resp proto.Message)
	id      func(req proto.Message) string
}

// NewMutation returns the mutation of method (the generated full method name, or an internal
// name for a write no RPC asks for, such as a timer's), whose change is apply: it changes the
// data in tx and fills resp, using now as the time of the write.
func NewMutation[Req, Resp proto.Message](method string, apply func(tx *bbolt.Tx, now time.Time, req Req, resp Resp) error) *Mutation {
	var req Req
	var resp Resp
	return &Mutation{
		method:  method,
		newReq:  func() proto.Message { return req.ProtoReflect().New().Interface() },
		newResp: func() proto.Message { return resp.ProtoReflect().New().Interface() },
		apply: func(tx *bbolt.Tx, now time.Time, q, p proto.Message) error {
			return apply(tx, now, q.(Req), p.(Resp))
		},
	}
}

// Then sets fn to run after each committed write of the mutation, on the copy of the data it
// was applied to (waking a timer, for example); it returns m.
func (m *Mutation) Then(fn func(resp proto.Message)) *Mutation {
	m.after = fn
	return m
}

// WithID sets how a write of m is identified when its request has no request_id (an internal
// write such as a timer's step): writes of the same id are one write to a replicated log within
// its duplicate window, whichever node makes them; it returns m.
func (m *Mutation) WithID(fn func(req proto.Message) string) *Mutation {
	m.id = fn
	return m
}

// ID identifies a write of m for deduplication: the request's request_id, else what WithID
// gives, else "" (the write is its own: a writer gives it a fresh id).
func (m *Mutation) ID(req proto.Message) string {
	if id := RequestID(req); id != "" {
		return id
	}
	if m.id != nil {
		return m.id(req)
	}
	return ""
}

// Method is the mutation's method name, part of its request-id idempotency key.
func (m *Mutation) Method() string { return m.method }

// NewRequest returns an empty request of the mutation's type.
func (m *Mutation) NewRequest() proto.Message { return m.newReq() }

// NewResponse returns an empty response of the mutation's type.
func (m *Mutation) NewResponse() proto.Message { return m.newResp() }

// Apply runs the change in tx with request-id idempotency (Recall first, Remember after), as
// UpdateOnce does inside its transaction.
func (m *Mutation) Apply(tx *bbolt.Tx, now time.Time, req, resp proto.Message) error {
	if ok, err := Recall(tx, m.method, req, resp); err != nil || ok {
		return err
	}
	if err := m.apply(tx, now, req, resp); err != nil {
		return err
	}
	return Remember(tx, now, m.method, req, resp)
}

// Committed runs what Then set, after a write of the mutation was committed.
func (m *Mutation) Committed(resp proto.Message) {
	if m.after != nil {
		m.after(resp)
	}
}

// A Writer runs mutations: Local in one process, or a replicated log that every copy of the
// data applies in the same order. Write returns once the write is durable where the writer
// keeps it, with resp filled as its first run filled it.
type Writer interface {
	Write(ctx context.Context, m *Mutation, now time.Time, req, resp proto.Message) error
}

// Local is the Writer of one process and one file: each write is one UpdateOnce transaction.
type Local struct{ DB *DB }

// Write runs m in one read-write transaction of w.DB.
func (w Local) Write(_ context.Context, m *Mutation, now time.Time, req, resp proto.Message) error {
	if err := w.DB.Update(func(tx *bbolt.Tx) error { return m.Apply(tx, now, req, resp) }); err != nil {
		return err
	}
	m.Committed(resp)
	return nil
}
