package interop

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	tsg "github.com/trifle-io/trifle_stats_go"
)

// Known upstream bugs (docs/compatibility.md, "Differences"). Each test shows what
// trifle_stats_go does and asserts trifle-c's behaviour; docs/compatibility.md lists them.

func init() {
	backendCases["sqlite"] = []interopCase{
		{"GoNestedPathCopies_CReadsSum", goNestedPathCopies},
		{"GoAssertNestedOnFlatRow", goAssertNestedOnFlatRow},
	}
	backendCases["mysql"] = []interopCase{
		{"GoDecimalIncrements_CReads", goDecimalIncrements},
		{"CTinyFractions_GoIncrements", cTinyFractionsGoIncrements},
		{"CDashKey_GoReads", cDashKeyGoReads},
	}
	backendCases["redis"] = []interopCase{
		{"GoHincrbyAfterCFraction", goHincrbyAfterCFraction},
		{"CIncrementAfterGoFraction", cIncrementAfterGoFraction},
	}
	// the same hashes and commands, routed by hash slot
	backendCases["redis_cluster"] = backendCases["redis"]
}

// sqliteRow returns the raw data object of one SQLite bucket (nil if there is no row).
func sqliteRow(t *testing.T, s *store, k, gran string, start time.Time) map[string]any {
	t.Helper()
	return sqlRow(t, s, k, gran, start, start.UTC().Format("2006-01-02T15:04:05Z"))
}

// sqlRow returns the raw data object of one SQL bucket: at is the value bound for the at column.
func sqlRow(t *testing.T, s *store, k, gran string, start time.Time, at any) map[string]any {
	t.Helper()
	var cond []string
	var args []any
	switch s.mode {
	case "partial":
		cond, args = []string{"key", "at"}, []any{k + "::" + gran, at}
	case "separated":
		cond, args = []string{"key", "granularity", "at"}, []any{k, gran, at}
	default:
		cond, args = []string{"key"}, []any{k + "::" + gran + "::" + strconv.FormatInt(start.Unix(), 10)}
	}
	for i, c := range cond {
		if s.backend == "postgres" {
			cond[i] = c + " = $" + strconv.Itoa(i+1)
		} else if s.backend == "mysql" {
			cond[i] = "`" + c + "` = ?" // key is a reserved word
		} else {
			cond[i] = c + " = ?"
		}
	}
	rows, err := s.sqlDB.Query("SELECT data FROM "+s.table+" WHERE "+strings.Join(cond, " AND "), args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var data map[string]any
	n := 0
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(text), &data); err != nil {
			t.Fatalf("row data %q: %v", text, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n > 1 {
		t.Fatalf("%d rows for one bucket", n)
	}
	return data
}

func mustJSON(s string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	return m
}

// goNestedPathCopies: upstream inserts packed keys flat but updates them through unquoted JSON
// paths ('$.meta.duration' is nested), so after three tracks the row holds a flat and a nested
// copy and upstream itself reads 2 or 4 (Go map order). trifle-c sums both copies (SPEC §7.5)
// and reads the true total 6; its next write folds the row back to flat keys, after which
// upstream reads 6 as well. The system record's keys.<key> suffers the same.
func goNestedPathCopies(t *testing.T, s *store) {
	hour := at("2025-01-15T10:00:00Z")
	for i := 0; i < 3; i++ {
		s.g.track(key, w1At, map[string]any{"count": 1, "meta": map[string]any{"duration": 2}})
	}
	if got, want := sqliteRow(t, s, key, "1h", hour), mustJSON(`{"count":3,"meta.duration":2,"meta":{"duration":4}}`); !reflect.DeepEqual(got, want) {
		t.Fatalf("upstream's row is %v, want the documented %v", got, want)
	}
	if got, want := sqliteRow(t, s, "__system__key__", "1h", hour), mustJSON(`{"count":3,"keys.event::logs":1,"keys":{"event::logs":2}}`); !reflect.DeepEqual(got, want) {
		t.Fatalf("upstream's system row is %v, want the documented %v", got, want)
	}
	checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 3, "meta.duration": 6}))
	checkSeries(t, "trifle-c system 1h", s.c.values("__system__key__", w1At, w1At, "1h"),
		one(hour, flat{"count": 3, "keys.event::logs": 3}))

	goRead, _ := flatten(s.g.values(key, w1At, w1At, "1h").Values[0])
	if d := goRead["meta.duration"]; goRead["count"] != 3 || (d != 2 && d != 4) {
		t.Errorf("upstream reads %v, want count 3 and meta.duration 2 or 4 (its documented bug)", goRead)
	}
	t.Logf("upstream reads meta.duration = %v of 6", goRead["meta.duration"])

	s.c.track(key, w1At, map[string]any{"count": 1})
	if got, want := sqliteRow(t, s, key, "1h", hour), mustJSON(`{"count":4,"meta.duration":6}`); !reflect.DeepEqual(got, want) {
		t.Errorf("after a trifle-c write the row is %v, want the folded %v", got, want)
	}
	checkSeries(t, "go after trifle-c write", s.g.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 4, "meta.duration": 6}))
}

// goAssertNestedOnFlatRow: an upstream Assert of a dotted leaf on a row that already holds it
// flat writes a nested copy next to the flat one instead of replacing it. No reader can tell
// which copy is current: trifle-c sums them (1 + 5 = 6, SPEC §7.5), upstream picks one at random.
// A difference that no trifle-c change can remove; documented in docs/compatibility.md.
func goAssertNestedOnFlatRow(t *testing.T, s *store) {
	hour := at("2025-01-15T10:00:00Z")
	s.c.track(key, w1At, map[string]any{"gauge": map[string]any{"depth": 1}, "count": 1})
	s.g.assert(key, w1At, map[string]any{"gauge": map[string]any{"depth": 5}, "count": 9})
	if got, want := sqliteRow(t, s, key, "1h", hour), mustJSON(`{"count":9,"gauge.depth":1,"gauge":{"depth":5}}`); !reflect.DeepEqual(got, want) {
		t.Fatalf("upstream's row is %v, want the documented %v", got, want)
	}
	checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 9, "gauge.depth": 6}))
	goRead, _ := flatten(s.g.values(key, w1At, w1At, "1h").Values[0])
	if d := goRead["gauge.depth"]; goRead["count"] != 9 || (d != 1 && d != 5) {
		t.Errorf("upstream reads %v, want count 9 and gauge.depth 1 or 5", goRead)
	}
}

// goHincrbyAfterCFraction: upstream increments an integral delta with HINCRBY, which Redis
// refuses once the field holds a fraction (trifle-c writes every increment with HINCRBYFLOAT,
// SPEC §7.7). The failed upstream write changes nothing; trifle-c keeps working on the field.
func goHincrbyAfterCFraction(t *testing.T, s *store) {
	hour := at("2025-01-15T10:00:00Z")
	s.c.track(key, w1At, map[string]any{"count": 2.5})
	err := trackErr(s, map[string]any{"count": 1})
	if err == nil || !strings.Contains(err.Error(), "hash value is not an integer") {
		t.Fatalf("upstream Track of an integer onto 2.5: %v, want Redis's \"hash value is not an integer\"", err)
	}
	checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 2.5}))
	checkSeries(t, "trifle-c system 1h", s.c.values("__system__key__", w1At, w1At, "1h"),
		one(hour, flat{"count": 1, "keys.event::logs": 1}))
	s.c.track(key, w1At, map[string]any{"count": 1})
	s.g.track(key, w1At, map[string]any{"count": 0.5}) // a fractional delta (HINCRBYFLOAT) works
	checkSeries(t, "go 1h", s.g.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 4}))
}

// cIncrementAfterGoFraction: the reverse order works on both sides.
func cIncrementAfterGoFraction(t *testing.T, s *store) {
	s.g.track(key, w1At, map[string]any{"count": 0.5})
	s.c.track(key, w1At, map[string]any{"count": 1})
	checkHourBoth(t, s, flat{"count": 1.5})
}

// TestGoNocturnal covers upstream's time bucketing bugs that make it file or look for a
// bucket elsewhere than trifle-c (SPEC §2.5, §2.7). The store is irrelevant; SQLite full mode.
func TestGoNocturnal(t *testing.T) {
	// Upstream's Values walks the week timeline with +7 days from the first floor and never
	// re-floors, so from 2024-12-20 it visits 12-30 then 01-06 and never reads the partial
	// first week of 2025 (bucket 2025-01-01), which both sides write to.
	t.Run("WeekTimelineSkipsPartialFirstWeek", func(t *testing.T) {
		s := backendNamed("sqlite").open(t, "full")
		when := at("2025-01-02T12:00:00Z")
		s.g.track(key, when, map[string]any{"count": 1})
		s.c.track(key, when, map[string]any{"count": 2})
		from, to := at("2024-12-20T00:00:00Z"), at("2025-01-20T00:00:00Z")
		weeks := func(dates ...string) []bucket {
			var b []bucket
			for _, d := range dates {
				w := flat{}
				if d == "2025-01-01" {
					w = flat{"count": 3}
				}
				b = append(b, bucket{at(d + "T00:00:00Z"), w})
			}
			return b
		}
		checkSeries(t, "trifle-c 1w", s.c.values(key, from, to, "1w"),
			weeks("2024-12-16", "2024-12-23", "2024-12-30", "2025-01-01", "2025-01-06", "2025-01-13", "2025-01-20"))
		checkSeries(t, "go 1w (documented upstream bug)", s.g.values(key, from, to, "1w"),
			weeks("2024-12-16", "2024-12-23", "2024-12-30", "2025-01-06", "2025-01-13", "2025-01-20"))
	})

	// At the autumn DST change the wall hour 02:00–02:59 occurs twice in Bratislava. Upstream
	// floors 02:30 CEST (00:30Z) to time.Date(…02:00…), which Go resolves to 02:00 CET, an hour
	// after the event; trifle-c files it under 02:00 CEST (SPEC §2.5, floor-092). So the same
	// event lands in two different buckets and each side's write shows up in its own hour.
	t.Run("DSTFallBackHour", func(t *testing.T) {
		s := backendNamed("sqlite").open(t, "full")
		when := at("2025-10-26T00:30:00Z")
		s.g.withZone(zone).track(key, when, map[string]any{"count": 1})
		s.c.withZone(zone).track(key, when, map[string]any{"count": 2})
		c := s.c.withZone(zone)
		from, to := at("2025-10-26T00:00:00Z"), at("2025-10-26T01:59:59Z")
		checkSeries(t, "trifle-c 1h", c.values(key, from, to, "1h"), []bucket{
			{at("2025-10-26T00:00:00Z"), flat{"count": 2}}, // 02:00+02:00: trifle-c's write
			{at("2025-10-26T01:00:00Z"), flat{"count": 1}}, // 02:00+01:00: upstream's write
		})
		if got := c.atText(key, from, to, "1h"); strings.Join(got, " ") != "2025-10-26T02:00:00+02:00 2025-10-26T02:00:00+01:00" {
			t.Errorf("trifle-c prints %v", got)
		}
		// The day bucket is the same on both sides.
		checkSeries(t, "trifle-c 1d", c.values(key, when, when, "1d"), one(at("2025-10-26T00:00:00+02:00"), flat{"count": 3}))
	})
}

// trackErr runs an upstream Track at w1At and returns its error instead of failing.
func trackErr(s *store, values map[string]any) error {
	return tsg.Track(s.g.config(), key, w1At, values)
}

// goDecimalIncrements: upstream's MySQL increments go through DECIMAL(65,10), so a sum keeps
// 10 decimal places (1e-11 + 1e-11 is stored as 0E-10) and is printed with them
// ("3.0000000000"). trifle-c reads those numbers as they are and adds to them in double
// precision; its own increments keep every bit (docs/compatibility.md).
func goDecimalIncrements(t *testing.T, s *store) {
	hour := at("2025-01-15T10:00:00Z")
	for i := 0; i < 2; i++ {
		s.g.track(key, w1At, map[string]any{"count": 1.5, "tiny": 1e-11})
	}
	row := sqlRow(t, s, key, "1h", hour, "2025-01-15 10:00:00.000000")
	if row["count"] != 3.0 || row["tiny"] != 0.0 {
		t.Fatalf("upstream's row is %v, want count 3 and tiny rounded to 0 (DECIMAL(65,10))", row)
	}
	checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 3, "tiny": 0}))
	s.c.track(key, w1At, map[string]any{"count": 0.25, "tiny": 1e-11})
	checkHourBoth(t, s, flat{"count": 3.25, "tiny": 1e-11})
}

// cTinyFractionsGoIncrements: a value trifle-c stored exactly (5e-324, 0.1 + 0.2) is read
// exactly by upstream, and upstream's next increment rounds it to 10 decimal places.
func cTinyFractionsGoIncrements(t *testing.T, s *store) {
	hour := at("2025-01-15T10:00:00Z")
	s.c.track(key, w1At, map[string]any{"a": 0.1, "tiny": 5e-324})
	s.c.track(key, w1At, map[string]any{"a": 0.2, "tiny": 5e-324})
	checkSeries(t, "go 1h", s.g.values(key, w1At, w1At, "1h"), one(hour, flat{"a": 0.30000000000000004, "tiny": 1e-323}))
	s.g.track(key, w1At, map[string]any{"a": 1, "tiny": 1})
	checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, flat{"a": 1.3, "tiny": 1}))
}

// cDashKeyGoReads: trifle-c spells a leading '-' of a member name as \u002d (MariaDB's JSON path
// parser rejects `$."-x"`); every JSON reader, upstream's included, decodes it to '-'.
func cDashKeyGoReads(t *testing.T, s *store) {
	s.c.track(key, w1At, map[string]any{"-dash": 1})
	s.c.track(key, w1At, map[string]any{"-dash": 2})
	checkHourBoth(t, s, flat{"-dash": 3})
}
