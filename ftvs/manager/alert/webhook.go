package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Webhook POSTs each alert as a JSON object to a URL.
type Webhook struct {
	URL    string
	Header map[string]string // e.g. Authorization
	Client *http.Client      // nil: http.DefaultClient (timeouts come from the context)
}

// Name implements Channel.
func (w *Webhook) Name() string { return "webhook " + w.URL }

// Send implements Channel: a 2xx answer is success, 408/429/5xx are retried,
// other 4xx answers are permanent.
func (w *Webhook) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return Permanent(fmt.Errorf("webhook: encode: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ftvs-alert")
	for k, v := range w.Header {
		req.Header.Set(k, v)
	}
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == 408 || resp.StatusCode == 429 || resp.StatusCode >= 500:
		return fmt.Errorf("webhook %s: %s: %s", w.URL, resp.Status, bytes.TrimSpace(msg))
	default:
		return Permanent(fmt.Errorf("webhook %s: %s: %s", w.URL, resp.Status, bytes.TrimSpace(msg)))
	}
}
