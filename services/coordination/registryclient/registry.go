// Package registryclient is the client side of the coordination service's region registry: the
// regional services use it to find their paired provinces and those provinces' endpoints. Answers
// are cached for a short time so that a busy feed does not ask the registry on every call.
package registryclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// DefaultTTL is how long answers are cached.
const DefaultTTL = 10 * time.Second

// Client reads pairings and endpoints from the coordination service.
type Client struct {
	rc        coordinationv1.RegistryServiceClient
	ttl       time.Duration
	now       func() time.Time
	deadlines peers.Deadlines

	mu       sync.Mutex
	pairings map[string]cached[[]regions.Pairing]
	regions  map[string]cached[*coordinationv1.Region]
}

type cached[T any] struct {
	value T
	at    time.Time
}

// New returns a client over a connection to the coordination service.
func New(cc grpc.ClientConnInterface) *Client {
	return &Client{
		rc:       coordinationv1.NewRegistryServiceClient(cc),
		ttl:      DefaultTTL,
		now:      time.Now,
		pairings: map[string]cached[[]regions.Pairing]{},
		regions:  map[string]cached[*coordinationv1.Region]{},
	}
}

// WithDeadlines makes c's calls use the deadlines d (the process's peers.Options.Deadlines)
// instead of the defaults, and returns c.
func (c *Client) WithDeadlines(d peers.Deadlines) *Client {
	c.deadlines = d
	return c
}

// pairingsPage is the page size of ListPairings calls.
const pairingsPage = 1000

// Pairings returns the pairings involving province code (either side).
func (c *Client) Pairings(ctx context.Context, code string) ([]regions.Pairing, error) {
	c.mu.Lock()
	if e, ok := c.pairings[code]; ok && c.now().Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return e.value, nil
	}
	c.mu.Unlock()
	var out []regions.Pairing
	token := ""
	for {
		callCtx, cancel := c.deadlines.WithTimeoutFor(ctx, pairingsPage)
		resp, err := c.rc.ListPairings(callCtx, &coordinationv1.ListPairingsRequest{Region: code, PageSize: pairingsPage, PageToken: token})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list pairings of %s: %w", code, err)
		}
		for _, p := range resp.GetPairings() {
			out = append(out, regions.Pairing{Receiving: p.GetReceivingRegion(), Sending: p.GetSendingRegion()})
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
	}
	c.mu.Lock()
	c.pairings[code] = cached[[]regions.Pairing]{value: out, at: c.now()}
	c.mu.Unlock()
	return out, nil
}

// Paired reports whether receiving and sending are paired.
func (c *Client) Paired(ctx context.Context, receiving, sending string) (bool, error) {
	ps, err := c.Pairings(ctx, receiving)
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		if p.Receiving == receiving && p.Sending == sending {
			return true, nil
		}
	}
	return false, nil
}

// Region returns the registry entry of province code (its role and endpoint).
func (c *Client) Region(ctx context.Context, code string) (*coordinationv1.Region, error) {
	c.mu.Lock()
	if e, ok := c.regions[code]; ok && c.now().Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return e.value, nil
	}
	c.mu.Unlock()
	callCtx, cancel := c.deadlines.WithTimeoutFor(ctx, 1)
	defer cancel()
	resp, err := c.rc.GetRegion(callCtx, &coordinationv1.GetRegionRequest{Name: "regions/" + code})
	if err != nil {
		return nil, fmt.Errorf("look up region %s: %w", code, err)
	}
	c.mu.Lock()
	c.regions[code] = cached[*coordinationv1.Region]{value: resp.GetRegion(), at: c.now()}
	c.mu.Unlock()
	return resp.GetRegion(), nil
}
