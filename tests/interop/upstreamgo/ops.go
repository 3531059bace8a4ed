package triflestats

import (
	"fmt"
	"time"
)

// Driver is upstream's storage interface.
type Driver interface {
	Inc(keys []Key, values map[string]any) error
	Set(keys []Key, values map[string]any) error
	Get(keys []Key) ([]map[string]any, error)
	Description() string
}

// WriteStorage is the write half used by Track/Assert.
type WriteStorage interface {
	Inc(keys []Key, values map[string]any) error
	Set(keys []Key, values map[string]any) error
}

// ValuesResult holds parallel bucket starts and unpacked bucket values.
type ValuesResult struct {
	At     []time.Time
	Values []map[string]any
}

type trackOptions struct{ trackingKey string }

// TrackOption modifies Track/Assert.
type TrackOption func(*trackOptions)

// Untracked counts the write under "__untracked__" in the system record.
func Untracked() TrackOption {
	return func(o *trackOptions) { o.trackingKey = untrackedKeyName }
}

// Track increments values in every effective granularity (one driver call with all keys).
func Track(cfg *Config, key string, at time.Time, values map[string]any, opts ...TrackOption) error {
	return write(cfg, key, at, values, false, opts)
}

// Assert sets values in every effective granularity; the system record is still incremented.
func Assert(cfg *Config, key string, at time.Time, values map[string]any, opts ...TrackOption) error {
	return write(cfg, key, at, values, true, opts)
}

func write(cfg *Config, key string, at time.Time, values map[string]any, set bool, opts []TrackOption) error {
	if cfg == nil {
		return fmt.Errorf("config required")
	}
	storage := cfg.Storage()
	if storage == nil {
		return fmt.Errorf("config driver required")
	}
	var o trackOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	var keys []Key
	for _, g := range cfg.EffectiveGranularities() {
		n, u, ok := validGranularity(g)
		if !ok {
			continue
		}
		b := floorTime(at, n, u, cfg)
		keys = append(keys, Key{Key: key, TrackingKey: o.trackingKey, Granularity: g, At: &b})
	}
	if set {
		return storage.Set(keys, values)
	}
	return storage.Inc(keys, values)
}

// Values reads one bucket per timeline entry straight from cfg.Driver.
func Values(cfg *Config, key string, from, to time.Time, granularity string, skipBlanks bool) (ValuesResult, error) {
	if cfg == nil || cfg.Driver == nil {
		return ValuesResult{}, fmt.Errorf("config and driver required")
	}
	n, u, ok := validGranularity(granularity)
	if !ok {
		return ValuesResult{}, fmt.Errorf("invalid granularity: %s", granularity)
	}
	at := timeline(from, to, n, u, cfg)
	keys := make([]Key, len(at))
	for i := range at {
		b := at[i]
		keys[i] = Key{Key: key, Granularity: granularity, At: &b}
	}
	got, err := cfg.Driver.Get(keys)
	if err != nil {
		return ValuesResult{}, err
	}
	res := ValuesResult{At: at, Values: got}
	if !skipBlanks {
		return res, nil
	}
	kept := ValuesResult{At: []time.Time{}, Values: []map[string]any{}}
	for i, v := range res.Values {
		if len(v) > 0 {
			kept.At = append(kept.At, res.At[i])
			kept.Values = append(kept.Values, v)
		}
	}
	return kept, nil
}
