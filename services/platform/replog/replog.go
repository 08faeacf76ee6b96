// Package replog is a replicated command log on NATS JetStream (issue 16,
// docs/replication.md): the engine under the coordination service's replicated mode.
//
// Every mutation becomes a Command (method, id, request bytes, the time chosen by the node that
// took the call) appended to one JetStream stream with R replicas. Append returns once a quorum
// of the replicas has the command, with its stream sequence; a repeat of the same method and id
// within the stream's duplicate window is not stored again and gets the first append's
// sequence. Every node runs Apply, which hands the commands to a function one at a time, in the
// stream's order, from the sequence after the last one the node applied; the function applies
// the command to the node's own store and records the sequence in the same transaction, so a
// restarted node resumes exactly after its last applied command. WaitApplied lets the node that
// appended a command wait until its own Apply has applied it, then answer from its own store.
//
// StartNode runs the embedded NATS server (with JetStream) a node holds the stream with.
//
// The package knows nothing of the coordination service; it is tested with real servers on
// loopback ports and with child processes killed with SIGKILL.
package replog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/platform/backoff"
)

// Command is one mutation as a log entry.
type Command struct {
	// Method is the full gRPC method name, or an internal name for a mutation no RPC makes.
	Method string
	// ID identifies the mutation for deduplication: the request's request_id, or an id the
	// node chose. Method and ID make the stream's Nats-Msg-Id. Required.
	ID string
	// Request is the request message's deterministic encoding.
	Request []byte
	// UnixNano is the mutation's time (chosen once, by the node that took the call); every node
	// applies the command at this time.
	UnixNano int64
}

// Time returns the command's time in UTC.
func (c Command) Time() time.Time { return time.Unix(0, c.UnixNano).UTC() }

// MsgID is the command's Nats-Msg-Id: method, a space, id.
func (c Command) MsgID() string { return c.Method + " " + c.ID }

func (c Command) check() error {
	switch {
	case c.Method == "":
		return errors.New("replog: a command needs a method")
	case c.ID == "":
		return fmt.Errorf("replog: command %s needs an id", c.Method)
	case strings.ContainsAny(c.Method, "\r\n\x00") || strings.ContainsAny(c.ID, "\r\n\x00"):
		return fmt.Errorf("replog: command %s: CR, LF or NUL in the method or id", c.Method)
	}
	return nil
}

// encode writes the command as a storagev1.ReplicatedCommand. The message has no maps, so its
// encoding is deterministic anyway; Deterministic says so.
func (c Command) encode() ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&storagev1.ReplicatedCommand{
		Method:   c.Method,
		Id:       c.ID,
		Request:  c.Request,
		UnixNano: c.UnixNano,
	})
}

func decodeCommand(b []byte) (Command, error) {
	var m storagev1.ReplicatedCommand
	if err := proto.Unmarshal(b, &m); err != nil {
		return Command{}, err
	}
	return Command{Method: m.GetMethod(), ID: m.GetId(), Request: m.GetRequest(), UnixNano: m.GetUnixNano()}, nil
}

// DefaultDuplicateWindow is how long the stream remembers a command's Nats-Msg-Id: a repeat
// within it is not stored again. Ten minutes covers a client's retries across a failover and
// the longest call deadline the services use; a repeat after it is stored again and left to
// the applier's request-id idempotency (store.UpdateOnce), which remembers responses for days.
const DefaultDuplicateWindow = 10 * time.Minute

// DefaultAttemptTimeout bounds one publish attempt of Append; a failed attempt is retried
// under the same Nats-Msg-Id until Append's context ends.
const DefaultAttemptTimeout = 2 * time.Second

// Option configures Open.
type Option func(*config)

type config struct {
	lg             *zap.Logger
	dupWindow      time.Duration
	attemptTimeout time.Duration
	name           string
	retry          backoff.Policy
}

// WithLogger logs connection changes and retried failures to lg.
func WithLogger(lg *zap.Logger) Option { return func(c *config) { c.lg = lg } }

// WithDuplicateWindow sets the stream's duplicate window when Open creates it.
func WithDuplicateWindow(d time.Duration) Option { return func(c *config) { c.dupWindow = d } }

// WithAttemptTimeout sets the timeout of one publish attempt.
func WithAttemptTimeout(d time.Duration) Option { return func(c *config) { c.attemptTimeout = d } }

// WithName names the NATS connection (seen in the server's monitoring).
func WithName(name string) Option { return func(c *config) { c.name = name } }

// ErrStreamMismatch: the stream exists with other settings than Open asks for (another replica
// count, subjects, storage, or limits). Open does not change a stream: an operator does, with
// the nats CLI, knowingly.
var ErrStreamMismatch = errors.New("replog: the stream exists with other settings")

// ErrNotThisStream: the stream holds fewer commands than the caller says it applied, so it is
// not the stream the caller's store was built from (recreated, or a quorum lost its files).
var ErrNotThisStream = errors.New("replog: the stream is behind the applied sequence")

// ErrGap: Apply was handed a sequence that is not the one after the last applied (the stream
// lost commands; it denies deletes and purges, so it should not).
var ErrGap = errors.New("replog: a gap in the stream's sequences")

// ErrUndecodable: an entry of the stream is not a command Append wrote.
var ErrUndecodable = errors.New("replog: an entry is not a command")

// ErrApplying: Apply is already running on this Log.
var ErrApplying = errors.New("replog: Apply is already running")

// ErrApplyStopped is what WaitApplied returns when Apply has returned (its error wraps this).
var ErrApplyStopped = errors.New("replog: Apply has stopped")

// Log is a client of the command stream: it appends commands and applies them in order.
type Log struct {
	cfg     config
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  string
	subject string

	mu       sync.Mutex
	applying bool
	applied  uint64
	stopped  error         // why the last Apply returned; nil while it runs or before
	changed  chan struct{} // closed and replaced when applied or stopped change
}

// StreamConfig is the configuration of the command stream Open creates: subject
// "<stream>.commands", R replicas, file storage, no limits (a full disk refuses appends rather
// than the stream dropping old commands: discard new), deletes and purges denied, the given
// duplicate window.
func StreamConfig(stream string, replicas int, dupWindow time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              stream,
		Description:       "replicated command log (services/platform/replog)",
		Subjects:          []string{subjectOf(stream)},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Discard:           jetstream.DiscardNew,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Duplicates:        dupWindow,
		DenyDelete:        true,
		DenyPurge:         true,
	}
}

func subjectOf(stream string) string { return stream + ".commands" }

// Open connects to the NATS servers at urls (the node's own first: the client reconnects to
// the others when it goes) and creates the stream, or binds to it when it exists with the same
// settings. It waits, until ctx ends, for JetStream to be ready (a cluster needs a quorum of
// its nodes up).
func Open(ctx context.Context, urls []string, stream string, replicas int, opts ...Option) (*Log, error) {
	cfg := config{
		lg:             zap.NewNop(),
		dupWindow:      DefaultDuplicateWindow,
		attemptTimeout: DefaultAttemptTimeout,
		retry:          backoff.Policy{Min: 50 * time.Millisecond, Max: time.Second},
	}
	for _, o := range opts {
		o(&cfg)
	}
	if replicas < 1 || replicas > 5 {
		return nil, fmt.Errorf("replog: %d replicas: want 1 to 5", replicas)
	}
	if len(urls) == 0 {
		return nil, errors.New("replog: no NATS server URL")
	}
	lg := cfg.lg.With(zap.String("stream", stream))
	nopts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			lg.Warn("nats disconnected", zap.Error(err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			lg.Info("nats reconnected", zap.String("server", c.ConnectedUrlRedacted()))
		}),
	}
	if cfg.name != "" {
		nopts = append(nopts, nats.Name(cfg.name))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nopts...)
	if err != nil {
		return nil, fmt.Errorf("replog: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("replog: %w", err)
	}
	l := &Log{cfg: cfg, nc: nc, js: js, stream: stream, subject: subjectOf(stream), changed: make(chan struct{})}
	l.cfg.lg = lg
	if err := l.ensureStream(ctx, replicas); err != nil {
		nc.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) ensureStream(ctx context.Context, replicas int) error {
	want := StreamConfig(l.stream, replicas, l.cfg.dupWindow)
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := l.js.CreateStream(actx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = l.compareStream(actx, want)
		}
		cancel()
		if err == nil || errors.Is(err, ErrStreamMismatch) {
			return err
		}
		if n == 1 || n%20 == 0 {
			l.cfg.lg.Info("waiting for jetstream", zap.Error(err))
		}
		if !backoff.Sleep(ctx, l.cfg.retry.Delay(n)) {
			return fmt.Errorf("replog: create stream %s: %w (last attempt: %v)", l.stream, ctx.Err(), err)
		}
	}
}

// compareStream checks the settings Open relies on.
func (l *Log) compareStream(ctx context.Context, want jetstream.StreamConfig) error {
	s, err := l.js.Stream(ctx, want.Name)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	got := info.Config
	var diffs []string
	add := func(name string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			diffs = append(diffs, fmt.Sprintf("%s %v (want %v)", name, g, w))
		}
	}
	add("replicas", got.Replicas, want.Replicas)
	add("subjects", got.Subjects, want.Subjects)
	add("storage", got.Storage, want.Storage)
	add("retention", got.Retention, want.Retention)
	add("max msgs", got.MaxMsgs, want.MaxMsgs)
	add("max bytes", got.MaxBytes, want.MaxBytes)
	add("max age", got.MaxAge, want.MaxAge)
	add("discard", got.Discard, want.Discard)
	add("deny delete", got.DenyDelete, want.DenyDelete)
	add("deny purge", got.DenyPurge, want.DenyPurge)
	if got.Duplicates < want.Duplicates {
		diffs = append(diffs, fmt.Sprintf("duplicate window %s (want at least %s)", got.Duplicates, want.Duplicates))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: stream %s: %s", ErrStreamMismatch, want.Name, strings.Join(diffs, ", "))
	}
	return nil
}

// Append publishes cmd and returns its stream sequence once a quorum of the replicas has it.
// A failed attempt (no leader during an election, a timeout, a node gone) is retried under the
// same Nats-Msg-Id until ctx ends, so a command is stored at most once however often it is
// retried within the duplicate window; a repeat of a stored command returns the sequence it was
// first stored at. An error means the command may or may not be in the stream: the caller
// retries with the same command (same id) to find out.
func (l *Log) Append(ctx context.Context, cmd Command) (uint64, error) {
	if err := cmd.check(); err != nil {
		return 0, err
	}
	b, err := cmd.encode()
	if err != nil {
		return 0, fmt.Errorf("replog: encode %s: %w", cmd.Method, err)
	}
	if limit := l.nc.MaxPayload(); limit > 0 && int64(len(b)) > limit {
		return 0, fmt.Errorf("replog: command %s of %d bytes: larger than the %d the servers take: %w", cmd.Method, len(b), limit, nats.ErrMaxPayload)
	}
	id := cmd.MsgID()
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, l.cfg.attemptTimeout)
		ack, err := l.js.Publish(actx, l.subject, b, jetstream.WithMsgID(id), jetstream.WithExpectStream(l.stream))
		cancel()
		if err == nil {
			if ack.Sequence == 0 {
				// Not a JetStream answer Append can trust; retry.
				err = fmt.Errorf("replog: acknowledgement without a sequence (duplicate %v)", ack.Duplicate)
			} else {
				return ack.Sequence, nil
			}
		}
		if !retryable(err) {
			return 0, fmt.Errorf("replog: append %s: %w", cmd.Method, err)
		}
		if ctx.Err() == nil && (n == 1 || n%10 == 0) {
			l.cfg.lg.Info("append retried", zap.String("method", cmd.Method), zap.Int("attempt", n), zap.Error(err))
		}
		if !backoff.Sleep(ctx, l.cfg.retry.Delay(n)) {
			return 0, fmt.Errorf("replog: append %s: %w (last attempt: %v)", cmd.Method, ctx.Err(), err)
		}
	}
}

// retryable: everything but a closed connection, a command too large for the servers or the
// stream, and another stream answering for the subject (server error 10060, "expected stream
// does not match").
func retryable(err error) bool {
	switch {
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, jetstream.ErrInvalidOption):
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamMessageExceedsMaximum, errCodeStreamNotMatch:
			return false
		}
	}
	return true
}

const errCodeStreamNotMatch jetstream.ErrorCode = 10060

// Applied returns the last sequence Apply has applied (or was started from).
func (l *Log) Applied() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied
}

// WaitApplied waits until Apply has applied seq, Apply has stopped (ErrApplyStopped, wrapped
// with its reason) or ctx ends.
func (l *Log) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		l.mu.Lock()
		applied, stopped, ch := l.applied, l.stopped, l.changed
		l.mu.Unlock()
		if applied >= seq {
			return nil
		}
		if stopped != nil {
			return stopped
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("replog: wait for sequence %d (applied %d): %w", seq, applied, ctx.Err())
		}
	}
}

// setLocked records progress and wakes the waiters; l.mu is held.
func (l *Log) setLocked(applied uint64, stopped error) {
	l.applied, l.stopped = applied, stopped
	close(l.changed)
	l.changed = make(chan struct{})
}

// Apply hands every command after sequence from to fn, one at a time and in the stream's
// order, until ctx ends or fn fails; it returns why it stopped. from is the last sequence the
// caller has applied (0 for none), which fn records in the same transaction as the command's
// effect: a caller restarted with the stored sequence gets every command after it exactly
// once. fn must be deterministic (every node applies the same commands to the same state); a
// command the domain refuses is a result fn records, not an error: an error from fn is a
// failure of the node (its disk), and stops Apply without the sequence counted as applied.
//
// Apply reads through an ordered consumer (ephemeral, no acknowledgements) and recreates it
// from the last applied sequence whenever it fails (its server gone, missed heartbeats), so it
// rides out a failover. Only one Apply runs on a Log at a time.
func (l *Log) Apply(ctx context.Context, from uint64, fn func(seq uint64, cmd Command) error) (err error) {
	l.mu.Lock()
	if l.applying {
		l.mu.Unlock()
		return ErrApplying
	}
	l.applying = true
	l.setLocked(from, nil)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.applying = false
		l.setLocked(l.applied, fmt.Errorf("%w: %w", ErrApplyStopped, err))
		l.mu.Unlock()
	}()

	if err := l.checkBehind(ctx, from); err != nil {
		return err
	}
	last := from
	for n := 1; ; n++ {
		progressed, err := l.applyFrom(ctx, &last, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if l.nc.IsClosed() {
			return fmt.Errorf("replog: apply: %w", nats.ErrConnectionClosed)
		}
		if errors.Is(err, errApply) || errors.Is(err, ErrGap) || errors.Is(err, ErrUndecodable) {
			return err
		}
		if progressed {
			n = 1
		}
		l.cfg.lg.Info("apply: consumer recreated", zap.Uint64("applied", last), zap.Error(err))
		if !backoff.Sleep(ctx, l.cfg.retry.Delay(n)) {
			return ctx.Err()
		}
	}
}

// errApply marks fn's errors.
var errApply = errors.New("replog: apply")

// checkBehind waits for the stream's state and refuses a stream behind from.
func (l *Log) checkBehind(ctx context.Context, from uint64) error {
	if from == 0 {
		return nil
	}
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := l.js.Stream(actx, l.stream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(actx)
		}
		cancel()
		if err == nil {
			if info.State.LastSeq < from {
				return fmt.Errorf("%w: stream %s ends at %d, applied %d", ErrNotThisStream, l.stream, info.State.LastSeq, from)
			}
			return nil
		}
		if !backoff.Sleep(ctx, l.cfg.retry.Delay(n)) {
			return fmt.Errorf("replog: stream %s: %w (last attempt: %v)", l.stream, ctx.Err(), err)
		}
	}
}

// LastSeq returns the sequence of the stream's last command, as its leader knows it: an error
// when no leader answers within ctx (an election, or this node cut off from the others).
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	s, err := l.js.Stream(ctx, l.stream)
	if err != nil {
		return 0, fmt.Errorf("replog: stream %s: %w", l.stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replog: stream %s: %w", l.stream, err)
	}
	return info.State.LastSeq, nil
}

// applyFrom consumes from *last+1 until an error; it reports whether it applied anything.
func (l *Log) applyFrom(ctx context.Context, last *uint64, fn func(uint64, Command) error) (bool, error) {
	cons, err := l.js.OrderedConsumer(ctx, l.stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   *last + 1,
	})
	if err != nil {
		return false, err
	}
	it, err := cons.Messages()
	if err != nil {
		return false, err
	}
	defer it.Stop()
	progressed := false
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return progressed, err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return progressed, err
		}
		seq := meta.Sequence.Stream
		if seq <= *last {
			continue // already applied (a consumer recreated behind)
		}
		if seq != *last+1 {
			return progressed, fmt.Errorf("%w: sequence %d after %d", ErrGap, seq, *last)
		}
		cmd, err := decodeCommand(msg.Data())
		if err == nil {
			err = cmd.check()
		}
		if err != nil {
			return progressed, fmt.Errorf("%w: sequence %d: %v", ErrUndecodable, seq, err)
		}
		if err := fn(seq, cmd); err != nil {
			return progressed, fmt.Errorf("%w: sequence %d (%s): %w", errApply, seq, cmd.Method, err)
		}
		*last = seq
		progressed = true
		l.mu.Lock()
		l.setLocked(seq, nil)
		l.mu.Unlock()
	}
}

// Close closes the connection; a running Apply returns.
func (l *Log) Close() error {
	l.nc.Close()
	return nil
}
