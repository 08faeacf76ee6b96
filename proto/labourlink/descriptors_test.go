package labourlink

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	_ "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	_ "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	_ "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	_ "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
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
		if strings.HasPrefix(string(fd.Package()), "labourlink.storage.") {
			t.Errorf("descriptors.binpb holds %s (package %s)", fd.Path(), fd.Package())
		}
		if strings.HasPrefix(string(fd.Package()), "labourlink.") {
			api++
		}
		return true
	})
	if api == 0 {
		t.Error("descriptors.binpb holds no labour.* file")
	}
}

// TestFilesMatchGeneratedCode: every API file in descriptors.binpb is the schema the generated
// Go code (and so the server) speaks, field for field, and every generated API file is in
// descriptors.binpb. A stale descriptors.binpb would make reflection describe another schema
// (grpcurl would encode requests with wrong field numbers without a word); CI rebuilds the file
// too, this catches a stale one in any `go test` run.
func TestFilesMatchGeneratedCode(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	protoregistry.GlobalFiles.RangeFiles(func(gen protoreflect.FileDescriptor) bool {
		pkg := string(gen.Package())
		if !strings.HasPrefix(pkg, "labourlink.") || strings.HasPrefix(pkg, "labourlink.storage.") {
			return true
		}
		emb, err := files.FindFileByPath(gen.Path())
		if err != nil {
			t.Errorf("%s is generated but not in descriptors.binpb: run bash .ci/gen", gen.Path())
			return true
		}
		a, b := protodesc.ToFileDescriptorProto(gen), protodesc.ToFileDescriptorProto(emb)
		a.SourceCodeInfo, b.SourceCodeInfo = nil, nil
		if !proto.Equal(a, b) {
			t.Errorf("%s in descriptors.binpb differs from the generated code: run bash .ci/gen", gen.Path())
		}
		checked++
		return true
	})
	if checked < 5 {
		t.Fatalf("compared %d API files, want every one (are the generated packages imported?)", checked)
	}
}

// TestVendoredFilesMatchTheirModules: the googleapis files vendored under proto/google
// (field_behavior.proto, status.proto, code.proto) are, field for field, the files compiled into
// the genproto modules go.mod uses, whose Go types the generated code refers to. A vendored file
// edited, or taken from another googleapis version, would make reflection describe a type other
// than the one the server encodes.
func TestVendoredFilesMatchTheirModules(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"google/api/field_behavior.proto", "google/rpc/status.proto", "google/rpc/code.proto"} {
		emb, err := files.FindFileByPath(path)
		if err != nil {
			t.Errorf("%s is not in descriptors.binpb: %v", path, err)
			continue
		}
		mod, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			t.Errorf("%s is not registered by its genproto module: %v", path, err)
			continue
		}
		a, b := protodesc.ToFileDescriptorProto(mod), protodesc.ToFileDescriptorProto(emb)
		a.SourceCodeInfo, b.SourceCodeInfo = nil, nil
		if !proto.Equal(a, b) {
			t.Errorf("vendored %s differs from the file of its genproto module", path)
		}
	}
}
