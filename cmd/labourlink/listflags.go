package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// listFlags are the paging flags every list command shares.
type listFlags struct {
	pageSize  *int
	pageToken *string
}

// addListFlags registers -page-size (what names the listed things) and -page-token.
func addListFlags(fs *flag.FlagSet, what string) listFlags {
	return listFlags{
		pageSize:  fs.Int("page-size", 50, what+" to show (1 to 1000)"),
		pageToken: fs.String("page-token", "", "continue a previous listing (printed at its end)"),
	}
}

// parseListArgs parses args (flags may follow other words), refuses positional arguments and
// checks the page size.
func parseListArgs(fs *flag.FlagSet, args []string, lf listFlags) error {
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *lf.pageSize < 1 || *lf.pageSize > 1000 {
		return errors.New("-page-size must be between 1 and 1000")
	}
	return nil
}
