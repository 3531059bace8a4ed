package triflestats

import "time"

// DefaultGranularities is upstream's default list.
var DefaultGranularities = []string{"1m", "1h", "1d", "1w", "1mo", "1q", "1y"}

// Config mirrors upstream's Config. Separator and JoinedIdentifier are dead fields upstream too
// (each driver has its own); the Buffer* fields are accepted but the model never buffers.
type Config struct {
	Driver            Driver
	TimeZone          string
	BeginningOfWeek   time.Weekday
	Granularities     []string
	Separator         string
	JoinedIdentifier  JoinedIdentifier
	BufferEnabled     bool
	BufferDuration    time.Duration
	BufferSize        int
	BufferAggregate   bool
	BufferAsync       bool
	TimezoneLoadError error
}

// DefaultConfig returns upstream's defaults (zone "GMT", Monday weeks, buffer on).
func DefaultConfig() *Config {
	return &Config{
		TimeZone:         "GMT",
		BeginningOfWeek:  time.Monday,
		Separator:        "::",
		JoinedIdentifier: JoinedFull,
		BufferEnabled:    true,
		BufferDuration:   time.Second,
		BufferSize:       256,
		BufferAggregate:  true,
		BufferAsync:      true,
	}
}

// Location loads the configured zone; an empty or unknown zone silently becomes UTC (the load
// error is kept in TimezoneLoadError), as upstream.
func (c *Config) Location() *time.Location {
	if c == nil || c.TimeZone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		c.TimezoneLoadError = err
		return time.UTC
	}
	return loc
}

// EffectiveGranularities: nil means the defaults, an empty list stays empty, exact duplicates
// and unparsable entries are dropped ("0m" parses and is kept; Track skips it later).
func (c *Config) EffectiveGranularities() []string {
	list := DefaultGranularities
	if c != nil && c.Granularities != nil {
		list = c.Granularities
	}
	seen := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	for _, g := range list {
		if seen[g] {
			continue
		}
		if _, _, ok := ParseGranularity(g); !ok {
			continue
		}
		seen[g] = true
		out = append(out, g)
	}
	return out
}

// Storage returns where Track/Assert write: always the driver in this model.
func (c *Config) Storage() WriteStorage {
	if c == nil || c.Driver == nil {
		return nil
	}
	return c.Driver
}

// FlushBuffer and ShutdownBuffer exist for API parity; nothing is ever buffered.
func (c *Config) FlushBuffer() error { return nil }

// ShutdownBuffer: see FlushBuffer.
func (c *Config) ShutdownBuffer() error { return nil }
