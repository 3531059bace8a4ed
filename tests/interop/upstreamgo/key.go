package triflestats

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// JoinedIdentifier is the identifier mode.
type JoinedIdentifier int

// Identifier modes in upstream's order.
const (
	JoinedFull JoinedIdentifier = iota
	JoinedPartial
	JoinedSeparated
)

// describe is a driver's Description: its name and the letter of its mode, "SQLiteDriver(J)".
func describe(driver string, m JoinedIdentifier) string {
	letter := "J"
	switch m {
	case JoinedPartial:
		letter = "P"
	case JoinedSeparated:
		letter = "S"
	}
	return driver + "(" + letter + ")"
}

// tableOrDefault is upstream's table name of the SQL drivers: trifle_stats when none is given.
func tableOrDefault(name string) string {
	if name == "" {
		return "trifle_stats"
	}
	return name
}

// Key is one bucket address.
type Key struct {
	Prefix      string
	Key         string
	TrackingKey string
	Granularity string
	At          *time.Time
}

// SystemTrackingKey is the name counted under keys.<tk> in the system record.
func (k Key) SystemTrackingKey() string {
	if k.TrackingKey != "" {
		return k.TrackingKey
	}
	return k.Key
}

func joinNonEmpty(sep string, parts ...string) string {
	kept := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}

// Join gives prefix, key, granularity and Unix seconds, empty parts omitted.
func (k Key) Join(sep string) string {
	unix := ""
	if k.At != nil {
		unix = strconv.FormatInt(k.At.Unix(), 10)
	}
	return joinNonEmpty(sep, k.Prefix, k.Key, k.Granularity, unix)
}

// PartialJoin is Join without the timestamp.
func (k Key) PartialJoin(sep string) string {
	return joinNonEmpty(sep, k.Prefix, k.Key, k.Granularity)
}

const (
	systemKeyName    = "__system__key__"
	untrackedKeyName = "__untracked__"
)

// systemKey is the system record of the same bucket.
func systemKey(k Key) Key {
	return Key{Prefix: k.Prefix, Key: systemKeyName, TrackingKey: k.TrackingKey,
		Granularity: k.Granularity, At: k.At}
}

// systemData is the packed system payload {"count": n, "keys.<tk>": n}.
func systemData(k Key, n int64) map[string]any {
	return map[string]any{"count": n, "keys." + k.SystemTrackingKey(): n}
}

func requireAt(k Key, mode JoinedIdentifier) error {
	if k.At != nil {
		return nil
	}
	switch mode {
	case JoinedPartial:
		return fmt.Errorf("partial identifier requires At")
	case JoinedSeparated:
		return fmt.Errorf("separated identifier requires At")
	}
	return nil
}
