// Package labourlink holds the descriptors of the whole labourlink API with their doc comments, for
// server reflection: the generated Go code embeds descriptors without comments, so without these
// `grpcurl describe` would show no documentation. descriptors.binpb is written by `bash .ci/gen`
// (`buf build`) and checked for freshness by CI like the generated code.
//
// The storage-only records of labourlink/storage/v1 are left out (`buf build --exclude-path`): they
// are not API and hold no service, so no served service leads to them. (grpcserver falls back to
// the descriptors linked into the binary, so a client naming one of them still gets its
// descriptor, without comments.)
package labourlink

import (
	_ "embed"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

//go:embed descriptors.binpb
var descriptorSet []byte

var (
	filesOnce sync.Once
	files     *protoregistry.Files
	filesErr  error
)

// Files returns the API's file descriptors (and those they import) with source information.
func Files() (*protoregistry.Files, error) {
	filesOnce.Do(func() {
		var set descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(descriptorSet, &set); err != nil {
			filesErr = fmt.Errorf("decode the embedded API descriptors: %w", err)
			return
		}
		files, filesErr = protodesc.NewFiles(&set)
		if filesErr != nil {
			filesErr = fmt.Errorf("load the embedded API descriptors: %w", filesErr)
		}
	})
	return files, filesErr
}
