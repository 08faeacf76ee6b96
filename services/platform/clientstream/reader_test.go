package clientstream

import (
	"errors"
	"io"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStream hands out its messages, then io.EOF; it counts the calls of Recv.
type fakeStream struct {
	msgs  []int
	calls chan int
}

func (f *fakeStream) recv() (int, error) {
	f.calls <- len(f.calls)
	if len(f.msgs) == 0 {
		return 0, io.EOF
	}
	m := f.msgs[0]
	f.msgs = f.msgs[1:]
	return m, nil
}

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		msgs  []int
		last  func(int) bool
		want  []int
		err   error // the error delivered after want; nil: none (the last message ends reading)
		calls int   // Recv calls made
	}{
		{"until io.EOF", []int{1, 2, 3}, nil, []int{1, 2, 3}, io.EOF, 4},
		{"stops after the last message", []int{1, 2, 3, 4}, func(m int) bool { return m == 2 }, []int{1, 2}, nil, 2},
		{"no message", nil, nil, nil, io.EOF, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeStream{msgs: tt.msgs, calls: make(chan int, 10)}
			r := Start(f.recv, tt.last)
			var got []int
			var err error
			for range len(tt.want) + btoi(tt.err != nil) {
				res := <-r.C()
				if res.Err != nil {
					err = res.Err
					break
				}
				got = append(got, res.Msg)
			}
			r.Stop()
			if len(got) != len(tt.want) || !errors.Is(err, tt.err) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.err)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
			// goleak (TestMain) checks that the goroutine ended; here, that Recv was not
			// called after the end.
			if len(f.calls) != tt.calls {
				t.Fatalf("%d Recv calls, want %d", len(f.calls), tt.calls)
			}
		})
	}
}

// Stop ends the reader while a message waits to be taken.
func TestReaderStopWithMessageWaiting(t *testing.T) {
	f := &fakeStream{msgs: []int{1, 2}, calls: make(chan int, 10)}
	r := Start(f.recv, nil)
	if res := <-r.C(); res.Msg != 1 {
		t.Fatalf("first message %v", res)
	}
	r.Stop() // the reader holds message 2 and must not block on it
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
