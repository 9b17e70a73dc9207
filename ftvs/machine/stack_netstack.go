package machine

import "errors"

// newStack builds the VS's network stack from the configuration.
// TODO(netstack): wire netstack.New once ftvs/netstack lands.
func newStack(cfg Config) (stackEngine, error) {
	return nil, errors.New("ftvs/netstack is not in the tree yet")
}
