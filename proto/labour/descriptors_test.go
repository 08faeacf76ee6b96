package labour

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestFilesLeaveOutStorage: the storage-only records are not part of the API served by
// reflection; the API itself is.
func TestFilesLeaveOutStorage(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	var api int
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(string(fd.Package()), "labour.storage.") {
			t.Errorf("descriptors.binpb holds %s (package %s)", fd.Path(), fd.Package())
		}
		if strings.HasPrefix(string(fd.Package()), "labour.") {
			api++
		}
		return true
	})
	if api == 0 {
		t.Error("descriptors.binpb holds no labour.* file")
	}
}
