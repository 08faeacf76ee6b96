package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// output is -o, how a command prints its result: a table for reading (the default), or the
// response message as one JSON document for scripts (docs/operations.md, "The CLI in scripts").
type output struct {
	json bool
}

// addOutputFlag registers -o table|json.
func addOutputFlag(fs *flag.FlagSet) *output {
	o := &output{}
	fs.Func("o", "output: table (for reading, the default) or json (one JSON document with the API's field names, for scripts)", func(s string) error {
		switch s {
		case "table":
			o.json = false
		case "json":
			o.json = true
		default:
			return fmt.Errorf("use table or json, not %q", s)
		}
		return nil
	})
	return o
}

// jsonOptions print a message with the API's field names (snake_case, as in the .proto files
// and docs/api.md), every field present (zero values too), enums by name.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Multiline: true, Indent: "  "}

// print writes msg to env.stdout as JSON under -o json, and otherwise runs table, which prints
// the result for reading.
func (o *output) print(env *cliEnv, msg proto.Message, table func()) error {
	if !o.json {
		table()
		return nil
	}
	return writeJSON(env.stdout, msg)
}

// writeJSON writes msg as one JSON document (jsonOptions) and a newline.
func writeJSON(w io.Writer, msg proto.Message) error {
	b, err := jsonOptions.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeJSONMerged writes, as one JSON document, the fields of the response messages of a
// command that makes several calls (such as `reconcile show`), each list under its API field
// name; paging tokens are left out (the command read every page).
func writeJSONMerged(w io.Writer, msgs ...proto.Message) error {
	merged := map[string]json.RawMessage{}
	for _, m := range msgs {
		b, err := jsonOptions.Marshal(m)
		if err != nil {
			return err
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(b, &fields); err != nil {
			return err
		}
		for k, v := range fields {
			if k == "next_page_token" {
				continue
			}
			if _, dup := merged[k]; dup {
				return fmt.Errorf("labourlink: two responses have a field %q", k)
			}
			merged[k] = v
		}
	}
	b, err := json.MarshalIndent(merged, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
