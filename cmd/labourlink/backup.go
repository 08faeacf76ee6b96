package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"

	backupv1 "github.com/eastwest/labourlink/proto/labourlink/backup/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/backup"
)

func init() {
	register(&command{name: "backup", summary: "save a consistent snapshot of a running service's data file, with its SHA-256", run: runBackup})
	register(&command{name: "restore", summary: "check a backup and put it in an empty data folder for a service to start on", run: runRestore})
}

// kindFlag reads -service sending|receiving|coordination.
func kindFlag(fs *flag.FlagSet) *string {
	return fs.String("service", "", "the kind of service: sending, receiving or coordination (required)")
}

func parseKind(s string) (daemon.Kind, error) {
	switch k := daemon.Kind(s); k {
	case daemon.Sending, daemon.Receiving, daemon.Coordination:
		return k, nil
	}
	return "", fmt.Errorf("-service %q: use sending, receiving or coordination", s)
}

func runBackup(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink backup")
	fs.SetOutput(env.stderr)
	kind := kindFlag(fs)
	out := fs.String("o", "", "the file to write (required; it must not exist); FILE.sha256 gets its checksum")
	d := addDialFlags(fs, daemon.Sending)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := parseKind(*kind)
	if err != nil {
		return err
	}
	d.defaultTo(fs, k)
	if *out == "" {
		return errors.New("-o FILE is required")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	var bar *progress
	saved, err := backup.Save(ctx, backupv1.NewBackupServiceClient(cc), *out, func(done, total int64) {
		if bar == nil {
			bar = newProgress(env.stderr, env.interactive, "backup", total, "bytes")
		}
		bar.Set(done, tr("%d of %d MB", done>>20, total>>20))
	})
	if err != nil {
		return err
	}
	if bar != nil {
		bar.Finish("done")
	}
	h := saved.Header
	fmt.Fprint(env.stdout, tr("saved %s: %s schema %d, instance %s, %d bytes, snapshot of %s (transaction %d)\nSHA-256 %s (in %s.sha256)\n",
		*out, h.GetSchema(), h.GetSchemaVersion(), h.GetInstance(), h.GetSize(), fmtTime(h.GetSnapshotTime()), h.GetTxid(), saved.SHA256, filepath.Base(*out)))
	return nil
}

func runRestore(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink restore")
	fs.SetOutput(env.stderr)
	kind := kindFlag(fs)
	in := fs.String("i", "", "the backup file (required); FILE.sha256, when present, is checked")
	dataDir := fs.String("data-dir", "", "the empty data folder the service will start on (required; its -data-dir)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := parseKind(*kind)
	if err != nil {
		return err
	}
	if *in == "" || *dataDir == "" {
		return errors.New("-i FILE and -data-dir DIR are required")
	}
	dst := daemon.Config{Kind: k, DataDir: *dataDir}.DataFile()
	info, err := backup.Restore(*in, dst, string(k))
	if err != nil {
		return err
	}
	fmt.Fprint(env.stdout, tr("restored %s to %s: %s schema %d, instance %s, %d bytes; checked (bbolt check, schema record).\nStart the service with -data-dir %s.\n",
		*in, dst, info.Schema, info.Version, info.Instance, info.Size, *dataDir))
	return nil
}
