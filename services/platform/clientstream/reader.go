// Package clientstream reads the messages of a client-streaming RPC in a goroutine of its own,
// so that the handler can wait for the next message and for other events at once (the server
// beginning its graceful stop): a handler blocked in Recv sees nothing else until the client
// sends or the stream breaks.
//
// Exactly one goroutine calls Recv (grpc-go allows one receiver and one sender at a time). It
// reads one message ahead of the handler at most, stops after the last message (a message the
// handler's last function says ends the stream, or an error, io.EOF included), and ends when
// the handler returns: grpc-go cancels the stream then, which ends a Recv in progress.
package clientstream

// Result is what one Recv returned.
type Result[M any] struct {
	Msg M
	Err error
}

// Reader receives the messages of a stream. Create it with Start; call Stop when the handler
// returns.
type Reader[M any] struct {
	c    chan Result[M]
	quit chan struct{}
}

// Start starts reading with recv (the stream's Recv). last, when not nil, reports whether a
// message is the last one the handler reads: after it, Recv is not called again.
func Start[M any](recv func() (M, error), last func(M) bool) *Reader[M] {
	r := &Reader[M]{c: make(chan Result[M]), quit: make(chan struct{})}
	go func() {
		for {
			m, err := recv()
			select {
			case r.c <- Result[M]{Msg: m, Err: err}:
			case <-r.quit:
				return
			}
			if err != nil || (last != nil && last(m)) {
				return
			}
		}
	}()
	return r
}

// C delivers the results of Recv in order. After an error, or after the last message, nothing
// more is delivered.
func (r *Reader[M]) C() <-chan Result[M] { return r.c }

// Stop tells the reader that nothing more is read. The goroutine ends when its Recv in
// progress returns (at once, once the handler has returned).
func (r *Reader[M]) Stop() { close(r.quit) }
