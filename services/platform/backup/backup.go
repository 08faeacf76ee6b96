// Package backup is the online backup of a service's data file (labourlink.backup.v1) and the
// client side of it: Save writes a running service's snapshot to a file with its checksum,
// Restore checks a snapshot and puts it where a service will open it.
//
// The snapshot is bbolt's Tx.WriteTo in one read transaction (as etcd's snapshot): consistent,
// taken while the service goes on serving. A read transaction held for the length of a backup
// does not block writes, but it keeps the pages it reads from being reused, so the file may
// grow by what is written meanwhile; bbolt reclaims that space afterwards.
package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	backupv1 "github.com/eastwest/labourlink/proto/labourlink/backup/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

const (
	defaultChunk = 1 << 20
	maxChunk     = 4 << 20
)

// ServiceName is the gRPC name of the backup service, for health checks.
const ServiceName = "labourlink.backup.v1.BackupService"

// Server serves backups of db.
type Server struct {
	backupv1.UnimplementedBackupServiceServer
	db  *store.DB
	lg  *zap.Logger
	now func() (t *timestamppb.Timestamp)
}

// NewServer returns the backup service of db.
func NewServer(db *store.DB, lg *zap.Logger) *Server {
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Server{db: db, lg: lg, now: timestamppb.Now}
}

// Register registers the BackupService on gs.
func (s *Server) Register(gs *grpc.Server) { backupv1.RegisterBackupServiceServer(gs, s) }

// ValidateRequest checks a request before its handler runs.
func (s *Server) ValidateRequest(fullMethod string, req any) error {
	switch r := req.(type) {
	case *backupv1.BackupRequest:
		if n := r.GetChunkSize(); n < 0 || n > maxChunk {
			var v apierror.Violations
			v.Addf("chunk_size", "is %d; it must be 0 (1 MiB) to %d bytes", n, maxChunk)
			return v.Err()
		}
		return nil
	}
	return apierror.NotValidated(req)
}

// Backup streams a snapshot of the data file.
func (s *Server) Backup(req *backupv1.BackupRequest, stream grpc.ServerStreamingServer[backupv1.BackupResponse]) error {
	chunk := int(req.GetChunkSize())
	if chunk == 0 {
		chunk = defaultChunk
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		info, err := store.Info(tx)
		if err != nil {
			return err
		}
		header := &backupv1.BackupHeader{Schema: info.Schema, SchemaVersion: info.Version, Instance: info.Instance,
			Size: info.Size, SnapshotTime: s.now(), Txid: int64(tx.ID())}
		if err := stream.Send(&backupv1.BackupResponse{Part: &backupv1.BackupResponse_Header{Header: header}}); err != nil {
			return err
		}
		s.lg.Info("backup started", zap.Int64("size", info.Size), zap.Int("txid", tx.ID()))
		sum := sha256.New()
		w := &chunkWriter{size: chunk, send: func(b []byte) error {
			sum.Write(b)
			return stream.Send(&backupv1.BackupResponse{Part: &backupv1.BackupResponse_Chunk{Chunk: b}})
		}}
		if _, err := tx.WriteTo(w); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
		if err := w.flush(); err != nil {
			return err
		}
		s.lg.Info("backup sent", zap.Int64("size", info.Size))
		return stream.Send(&backupv1.BackupResponse{Part: &backupv1.BackupResponse_Trailer{Trailer: &backupv1.BackupTrailer{Sha256: hex.EncodeToString(sum.Sum(nil))}}})
	})
}

// chunkWriter cuts what is written into messages of at most size bytes.
type chunkWriter struct {
	size int
	buf  []byte
	send func([]byte) error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(w.size-len(w.buf), len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == w.size {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = make([]byte, 0, w.size) // the sent slice belongs to the message now
	return err
}

// Saved describes a backup written by Save.
type Saved struct {
	Header *backupv1.BackupHeader
	// SHA256 is the checksum of the file, lowercase hex.
	SHA256 string
}

// Save streams a backup from c into the file path (which must not exist), with the checksum file path+".sha256" (in the
// format of sha256sum, so `sha256sum -c` checks it). It writes path+".part" and renames it only
// once the trailer's checksum matches what arrived, so path is never a partial backup. progress,
// if not nil, is called with the bytes received so far and the snapshot's size.
func Save(ctx context.Context, c backupv1.BackupServiceClient, path string, progress func(done, total int64)) (*Saved, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%s exists: a backup never overwrites a file, choose another name", path)
	}
	stream, err := c.Backup(ctx, &backupv1.BackupRequest{})
	if err != nil {
		return nil, err
	}
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(part) // gone after the rename; removes a failed attempt
	saved, err := receive(stream, f, progress)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Rename(part, path); err != nil {
		return nil, err
	}
	line := saved.SHA256 + "  " + filepath.Base(path) + "\n"
	if err := os.WriteFile(path+".sha256", []byte(line), 0o600); err != nil {
		return nil, err
	}
	return saved, nil
}

// receive writes the chunks of stream to f (synced) and checks them against the trailer.
func receive(stream grpc.ServerStreamingClient[backupv1.BackupResponse], f *os.File, progress func(done, total int64)) (*Saved, error) {
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	header := first.GetHeader()
	if header == nil {
		return nil, errors.New("backup stream did not begin with a header")
	}
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	var done int64
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil, errors.New("backup stream ended without its trailer: the backup is incomplete")
		}
		if err != nil {
			return nil, err
		}
		switch p := m.GetPart().(type) {
		case *backupv1.BackupResponse_Chunk:
			if _, err := bw.Write(p.Chunk); err != nil {
				return nil, err
			}
			done += int64(len(p.Chunk))
			if progress != nil {
				progress(done, header.GetSize())
			}
		case *backupv1.BackupResponse_Trailer:
			if err := bw.Flush(); err != nil {
				return nil, err
			}
			got := hex.EncodeToString(sum.Sum(nil))
			if got != p.Trailer.GetSha256() || done != header.GetSize() {
				return nil, fmt.Errorf("backup damaged in transit: %d bytes with SHA-256 %s, the service sent %d bytes with %s",
					done, got, header.GetSize(), p.Trailer.GetSha256())
			}
			if err := f.Sync(); err != nil {
				return nil, err
			}
			return &Saved{Header: header, SHA256: got}, nil
		default:
			return nil, fmt.Errorf("unexpected message in a backup stream: %T", p)
		}
	}
}

// Restore puts the backup at src into dst, the data file a service will open (which must not
// exist: restore goes into an empty place, never over data). It checks the checksum file
// src+".sha256" when there is one, runs bbolt's consistency check on the copy and reads its
// schema record, which must name schema (when not empty). It returns what the file says of
// itself. dst is written as dst+".part" and renamed once checked.
func Restore(src, dst, schema string) (store.FileInfo, error) {
	if _, err := os.Stat(dst); err == nil {
		return store.FileInfo{}, fmt.Errorf("%s exists: restore into an empty data folder (move the old file away first)", dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return store.FileInfo{}, err
	}
	want, err := os.ReadFile(src + ".sha256")
	switch {
	case errors.Is(err, os.ErrNotExist):
		want = nil
	case err != nil:
		return store.FileInfo{}, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return store.FileInfo{}, err
	}
	part := dst + ".part"
	sum, err := copyFile(src, part)
	defer os.Remove(part)
	if err != nil {
		return store.FileInfo{}, err
	}
	if want != nil {
		if fields := strings.Fields(string(want)); len(fields) == 0 || fields[0] != hex.EncodeToString(sum.Sum(nil)) {
			return store.FileInfo{}, fmt.Errorf("%s does not match its checksum file %s.sha256: the backup is damaged", src, src)
		}
	}
	info, err := store.Inspect(part)
	if err != nil {
		return store.FileInfo{}, fmt.Errorf("%s is not a sound data file: %w", src, err)
	}
	if schema != "" && info.Schema != schema {
		return store.FileInfo{}, fmt.Errorf("%s is a backup of a %s service, not of a %s one", src, info.Schema, schema)
	}
	if err := os.Rename(part, dst); err != nil {
		return store.FileInfo{}, err
	}
	return info, nil
}

// copyFile copies src to a new file dst (synced) and returns the SHA-256 of the bytes copied.
func copyFile(src, dst string) (hash.Hash, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, sum), in); err != nil {
		out.Close()
		return nil, err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return nil, err
	}
	return sum, out.Close()
}
