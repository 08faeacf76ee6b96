package proctest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A port reserved by a test is refused to the others until it is released; a reservation left
// by a process that is gone is taken over; FreeAddrWith holds its ports until its test ends.
func TestPortReservations(t *testing.T) {
	const port = 9 // below the picked range: no FreeAddr of a test running beside picks it
	release, ok := reservePort(port)
	if !ok {
		t.Fatal("a free port was not reserved")
	}
	if _, ok := reservePort(port); ok {
		t.Fatal("a port reserved by this process was reserved again")
	}
	release()
	release, ok = reservePort(port)
	if !ok {
		t.Fatal("a released port was not reserved again")
	}
	release()

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skipf("no process to leave a reservation behind: %v", err)
	}
	path := filepath.Join(portsDir, strconv.Itoa(port))
	if err := os.WriteFile(path, []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	release, ok = reservePort(port)
	if !ok {
		t.Fatal("the reservation of a process that is gone was not taken over")
	}
	release()

	var addr string
	t.Run("picker", func(t *testing.T) { addr = FreeAddrWith(t, 2000) })
	_, p, _ := netSplit(addr)
	for _, q := range []int{p, p + 2000} {
		release, ok := reservePort(q)
		if !ok {
			t.Errorf("port %d still held after the test that picked it ended", q)
			continue
		}
		release()
	}
	var held string
	t.Run("holder", func(t *testing.T) {
		held = FreeAddr(t)
		_, q, _ := netSplit(held)
		if _, ok := reservePort(q); ok {
			t.Errorf("port %d picked by FreeAddr was reserved again while its test runs", q)
		}
	})
}

func netSplit(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	return host, n, err
}
