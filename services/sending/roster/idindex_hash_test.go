package roster

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/eastwest/labourlink/services/codes/idnumber"
)

// TestIDIndexHashIsHMAC: the index's hash, from its pooled and reused HMAC states, is the
// HMAC-SHA-256 of the normalised number under the index's key, whatever the key and however
// many goroutines hash at once.
func TestIDIndexHashIsHMAC(t *testing.T) {
	keys := [][]byte{[]byte("key one, 32 bytes long.........."), []byte("another key")}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				key := keys[(g+i)%len(keys)]
				idn := fmt.Sprintf("52050219900101%03dx", i)
				m := hmac.New(sha256.New, key)
				m.Write([]byte(idnumber.Normalize(idn)))
				if got, want := (idIndex{key: key}).hash(idn), m.Sum(nil); !hmac.Equal(got, want) {
					t.Errorf("hash(%q) under key %q = %x, want %x", idn, key, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
