package interop

import (
	"errors"
	"testing"
	"time"

	tsg "github.com/trifle-io/trifle_stats_go"
)

// TestInterop runs every case on every backend and identifier mode it supports, each case on a
// fresh store opened by both trifle_stats_go and trifle-c. Names: TestInterop/<backend>/<mode>/<case>.
func TestInterop(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.available(t)
			for _, mode := range b.modes {
				t.Run(mode, func(t *testing.T) {
					for _, c := range commonCases {
						t.Run(c.name, func(t *testing.T) { c.run(t, b.open(t, mode)) })
					}
					for _, c := range backendCases[b.name] {
						t.Run(c.name, func(t *testing.T) { c.run(t, b.open(t, mode)) })
					}
				})
			}
		})
	}
}

type interopCase struct {
	name string
	run  func(t *testing.T, s *store)
}

var commonCases = []interopCase{
	{"GoTrack_CValues", goTrackCValues},
	{"CTrack_GoValues", cTrackGoValues},
	{"GoAssert_CValues", goAssertCValues},
	{"CAssert_GoValues", cAssertGoValues},
	{"GoUntracked_CValues", goUntrackedCValues},
	{"CUntracked_GoValues", cUntrackedGoValues},
	{"GoSystemKey_CValues", goSystemKeyCValues},
	{"CSystemKey_GoValues", cSystemKeyGoValues},
	{"GoTimeZone_CValues", goTimeZoneCValues},
	{"CTimeZone_GoValues", cTimeZoneGoValues},
	{"GoNonNumeric_CValues", goNonNumericCValues},
}

// backendCases are the upstream bugs that only one driver has (bugs_test.go).
var backendCases = map[string][]interopCase{}

const key = "event::logs"

// The tracking scenario: three writes with nested leaves and fractions, two in the 10:00 hour.
var (
	w1At = at("2025-01-15T10:20:00Z")
	w2At = at("2025-01-15T10:40:00Z")
	w3At = at("2025-01-15T13:05:00Z")
	w1   = map[string]any{"count": 1, "duration": map[string]any{"db": 0.25, "total": 2.5}}
	w2   = map[string]any{"count": 2, "duration": map[string]any{"db": 0.5}, "bytes": 0.5}
	w3   = map[string]any{"count": 1, "duration": map[string]any{"total": 2.5}}
)

// trackingChecks reads the scenario back in every configured granularity through read.
func trackingChecks(t *testing.T, who string, read func(from, to time.Time, gran string) series) {
	t.Helper()
	all := flat{"count": 4, "duration.db": 0.75, "duration.total": 5, "bytes": 0.5}
	checkSeries(t, who+" 1m", read(w1At, w1At.Add(time.Minute), "1m"), []bucket{
		{w1At, flat{"count": 1, "duration.db": 0.25, "duration.total": 2.5}},
		{w1At.Add(time.Minute), flat{}},
	})
	checkSeries(t, who+" 1m", read(w2At, w2At, "1m"), one(w2At, flat{"count": 2, "duration.db": 0.5, "bytes": 0.5}))
	checkSeries(t, who+" 1m", read(w3At, w3At, "1m"), one(w3At, flat{"count": 1, "duration.total": 2.5}))
	checkSeries(t, who+" 1h", read(at("2025-01-15T10:00:00Z"), at("2025-01-15T13:59:59Z"), "1h"), []bucket{
		{at("2025-01-15T10:00:00Z"), flat{"count": 3, "duration.db": 0.75, "duration.total": 2.5, "bytes": 0.5}},
		{at("2025-01-15T11:00:00Z"), flat{}},
		{at("2025-01-15T12:00:00Z"), flat{}},
		{at("2025-01-15T13:00:00Z"), flat{"count": 1, "duration.total": 2.5}},
	})
	for _, g := range []struct {
		gran  string
		start string
	}{{"1d", "2025-01-15"}, {"1w", "2025-01-13"}, {"1mo", "2025-01-01"}, {"1q", "2025-01-01"}, {"1y", "2025-01-01"}} {
		checkSeries(t, who+" "+g.gran, read(w1At, w3At, g.gran), one(at(g.start+"T00:00:00Z"), all))
	}
}

func goTrackCValues(t *testing.T, s *store) {
	s.g.track(key, w1At, w1)
	s.g.track(key, w2At, w2)
	s.g.track(key, w3At, w3)
	trackingChecks(t, "trifle-c", func(from, to time.Time, gran string) series { return s.c.values(key, from, to, gran) })
}

func cTrackGoValues(t *testing.T, s *store) {
	s.c.track(key, w1At, w1)
	s.c.track(key, w2At, w2)
	s.c.track(key, w3At, w3)
	trackingChecks(t, "go", func(from, to time.Time, gran string) series { return s.g.values(key, from, to, gran) })
}

// The assert scenario: a tracked bucket, then an assert that replaces one leaf, adds another and
// keeps the rest; the system record counts both writes.
var (
	base     = map[string]any{"count": 3, "duration": map[string]any{"db": 0.25}}
	asserted = map[string]any{"count": 7, "gauge": map[string]any{"depth": 1.5}}
	after    = flat{"count": 7, "duration.db": 0.25, "gauge.depth": 1.5}
	twoOps   = flat{"count": 2, "keys.event::logs": 2}
)

func assertChecks(t *testing.T, who string, read func(key string, from, to time.Time, gran string) series) {
	t.Helper()
	checkSeries(t, who+" 1h", read(key, w1At, w1At, "1h"), one(at("2025-01-15T10:00:00Z"), after))
	checkSeries(t, who+" 1d", read(key, w1At, w1At, "1d"), one(at("2025-01-15T00:00:00Z"), after))
	checkSeries(t, who+" system 1h", read("__system__key__", w1At, w1At, "1h"), one(at("2025-01-15T10:00:00Z"), twoOps))
}

func goAssertCValues(t *testing.T, s *store) {
	s.c.track(key, w1At, base)
	s.g.assert(key, w1At, asserted)
	assertChecks(t, "trifle-c", s.c.values)
}

func cAssertGoValues(t *testing.T, s *store) {
	s.g.track(key, w1At, base)
	s.c.assert(key, w1At, asserted)
	assertChecks(t, "go", s.g.values)
}

func untrackedChecks(t *testing.T, who string, read func(key string, from, to time.Time, gran string) series) {
	t.Helper()
	for _, g := range []struct{ gran, start string }{{"1h", "2025-01-15T10:00:00Z"}, {"1d", "2025-01-15T00:00:00Z"}} {
		checkSeries(t, who+" "+g.gran, read(key, w1At, w1At, g.gran), one(at(g.start), flat{"count": 1}))
		checkSeries(t, who+" system "+g.gran, read("__system__key__", w1At, w1At, g.gran),
			one(at(g.start), flat{"count": 1, "keys.__untracked__": 1}))
	}
}

func goUntrackedCValues(t *testing.T, s *store) {
	s.g.track(key, w1At, map[string]any{"count": 1}, tsg.Untracked())
	untrackedChecks(t, "trifle-c", s.c.values)
}

func cUntrackedGoValues(t *testing.T, s *store) {
	s.c.trackUntracked(key, w1At, map[string]any{"count": 1})
	untrackedChecks(t, "go", s.g.values)
}

// The system scenario: two writes of one key and one of another in the same hour.
const other = "page::views"

func systemChecks(t *testing.T, who string, read func(key string, from, to time.Time, gran string) series) {
	t.Helper()
	want := flat{"count": 3, "keys.event::logs": 2, "keys.page::views": 1}
	for _, g := range []struct{ gran, start string }{
		{"1h", "2025-01-15T10:00:00Z"}, {"1d", "2025-01-15T00:00:00Z"}, {"1mo", "2025-01-01T00:00:00Z"},
	} {
		checkSeries(t, who+" system "+g.gran, read("__system__key__", w1At, w2At, g.gran), one(at(g.start), want))
	}
	checkSeries(t, who+" system 1m", read("__system__key__", w1At, w1At, "1m"),
		one(w1At, flat{"count": 1, "keys.event::logs": 1}))
}

func goSystemKeyCValues(t *testing.T, s *store) {
	s.g.track(key, w1At, map[string]any{"count": 1})
	s.g.track(other, w1At.Add(10*time.Minute), map[string]any{"count": 1})
	s.g.track(key, w2At, map[string]any{"count": 1})
	systemChecks(t, "trifle-c", s.c.values)
}

func cSystemKeyGoValues(t *testing.T, s *store) {
	s.c.track(key, w1At, map[string]any{"count": 1})
	s.c.track(other, w1At.Add(10*time.Minute), map[string]any{"count": 1})
	s.c.track(key, w2At, map[string]any{"count": 1})
	systemChecks(t, "go", s.g.values)
}

// The zone scenario (Europe/Bratislava on both sides): 23:30Z in winter and 22:30Z in summer
// belong to the next local day.
var (
	winter    = at("2025-01-15T23:30:00Z")
	summer    = at("2025-07-01T22:30:00Z")
	winterDay = at("2025-01-16T00:00:00+01:00")
	summerDay = at("2025-07-02T00:00:00+02:00")
)

const zone = "Europe/Bratislava"

func zoneChecks(t *testing.T, who string, read func(key string, from, to time.Time, gran string) series) {
	t.Helper()
	checkSeries(t, who+" 1d winter", read(key, winter, winter, "1d"), one(winterDay, flat{"count": 1}))
	checkSeries(t, who+" 1d summer", read(key, summer, summer, "1d"), one(summerDay, flat{"count": 2}))
	checkSeries(t, who+" 1h winter", read(key, winter, winter, "1h"), one(at("2025-01-16T00:00:00+01:00"), flat{"count": 1}))
	checkSeries(t, who+" 1mo summer", read(key, summer, summer, "1mo"), one(at("2025-07-01T00:00:00+02:00"), flat{"count": 2}))
}

func goTimeZoneCValues(t *testing.T, s *store) {
	g := s.g.withZone(zone)
	g.track(key, winter, map[string]any{"count": 1})
	g.track(key, summer, map[string]any{"count": 2})
	c := s.c.withZone(zone)
	zoneChecks(t, "trifle-c", c.values)
	if got := c.atText(key, winter, winter, "1d"); len(got) != 1 || got[0] != "2025-01-16T00:00:00+01:00" {
		t.Errorf("trifle-c prints the day bucket as %v, want [2025-01-16T00:00:00+01:00]", got)
	}
	// Read in UTC, the UTC day of the event is another bucket: the zone is part of the schema.
	checkSeries(t, "trifle-c UTC 1d", s.c.values(key, winter, winter, "1d"), one(at("2025-01-15T00:00:00Z"), flat{}))
}

func cTimeZoneGoValues(t *testing.T, s *store) {
	c := s.c.withZone(zone)
	c.track(key, winter, map[string]any{"count": 1})
	c.track(key, summer, map[string]any{"count": 2})
	zoneChecks(t, "go", s.g.withZone(zone).values)
	checkSeries(t, "go UTC 1d", s.g.values(key, winter, winter, "1d"), one(at("2025-01-15T00:00:00Z"), flat{}))
}

// goNonNumericCValues: upstream accepts any leaf in Assert; trifle-c skips non-numeric stored
// leaves on read and leaves them untouched, and an increment of such a leaf counts it as 0
// (sqlite, postgres, mysql) or is rejected as EDATA (redis, mongo) — SPEC §4.3, ERRATA I5.
func goNonNumericCValues(t *testing.T, s *store) {
	s.g.assert(key, w1At, map[string]any{"status": "ok", "count": 2})
	hour := at("2025-01-15T10:00:00Z")
	checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 2}))
	s.c.track(key, w1At, map[string]any{"count": 1})
	got := s.g.values(key, w1At, w1At, "1h")
	nums, rest := flatten(got.Values[0])
	if !equalFlat(nums, flat{"count": 3}) || len(rest) != 1 || rest["status"] != "ok" {
		t.Errorf("go after trifle-c track: %v %v, want count 3 and status \"ok\" kept", nums, rest)
	}
	_, err := s.c.run(s.c.writeArgs("track", key, w1At, map[string]any{"status": 1}, false)...)
	switch s.backend {
	case "sqlite", "postgres", "mysql":
		if err != nil {
			t.Fatalf("trifle-c track of a non-numeric stored leaf: %v (want it counted as 0)", err)
		}
		checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 3, "status": 1}))
	default:
		var ce *cliError
		if !errors.As(err, &ce) || ce.code != "EDATA" {
			t.Fatalf("trifle-c track of a non-numeric stored leaf on %s: %v, want an EDATA error", s.backend, err)
		}
		checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 3}))
	}
}
