// Package rostertest has the helpers that tests of several packages use to fill a sending
// service's roster through its real API: valid identity numbers and an import client that
// sends the final mark as real clients must.
package rostertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
)

// IDNumber returns a valid identity number issued in county (a 6-digit code) for someone born on
// birth, told apart by seq (0 to 999).
func IDNumber(county string, birth time.Time, seq int) string {
	first17 := fmt.Sprintf("%s%s%03d", county, birth.Format("20060102"), seq%1000)
	return first17 + string(idnumber.CheckChar(first17))
}

// ImportRows sends rows in messages of chunk rows with the given import id, the last message
// marked final with the number of rows, and returns the reply. When the server ends the stream
// early (an import already complete, a refusal), the reply or the status is CloseAndRecv's.
func ImportRows(ctx context.Context, c sendingv1.RosterServiceClient, importID string, rows []*sendingv1.WorkerRow, chunk int) (*sendingv1.ImportWorkersResponse, error) {
	stream, err := c.ImportWorkers(ctx)
	if err != nil {
		return nil, err
	}
	for start := 0; ; start += chunk {
		end := min(start+chunk, len(rows))
		req := &sendingv1.ImportWorkersRequest{ImportId: importID, Rows: rows[start:end]}
		if end == len(rows) {
			req.Final, req.TotalRows = true, int64(len(rows))
		}
		err := stream.Send(req)
		if errors.Is(err, io.EOF) {
			break // the server replied early; CloseAndRecv has the reply or the status
		}
		if err != nil {
			return nil, err
		}
		if req.Final {
			break
		}
	}
	return stream.CloseAndRecv()
}
