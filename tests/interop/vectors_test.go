package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tsg "github.com/trifle-io/trifle_stats_go"
)

// vectorsDir is conformance/vectors: $TRIFLE_VECTORS_DIR (set by ctest), else in this repository.
func vectorsDir() string {
	if d := os.Getenv("TRIFLE_VECTORS_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "conformance", "vectors")
}

// TestUpstreamFloorVectors checks the Go side's bucketing against the upstream_go column of
// the SPEC floor vectors ("same" = upstream agrees with SPEC, a number = upstream's bucket where
// it differs, e.g. at DST folds). Both sides write to floor(at), so this is what decides which
// keys they share; the differing rows are the ones docs/compatibility.md lists.
func TestUpstreamFloorVectors(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(vectorsDir(), "nocturnal.json"))
	need(t, err == nil, "SPEC vectors not found: %v", err)
	var doc struct {
		Floor []struct {
			ID          string          `json:"id"`
			Zone        string          `json:"zone"`
			WeekStart   string          `json:"week_start"`
			AtUnix      int64           `json:"at_unix"`
			Granularity string          `json:"granularity"`
			Expected    int64           `json:"expected"`
			UpstreamGo  json.RawMessage `json:"upstream_go"`
		} `json:"floor"`
	}
	if err := json.Unmarshal(text, &doc); err != nil {
		t.Fatal(err)
	}
	days := map[string]time.Weekday{"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
		"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday}
	checked, differ := 0, 0
	for _, v := range doc.Floor {
		if len(v.UpstreamGo) == 0 || string(v.UpstreamGo) == "null" {
			continue
		}
		want := v.Expected
		if string(v.UpstreamGo) != `"same"` {
			if err := json.Unmarshal(v.UpstreamGo, &want); err != nil {
				t.Fatalf("%s: upstream_go %s: %v", v.ID, v.UpstreamGo, err)
			}
			differ++
		}
		week, ok := days[strings.ToLower(v.WeekStart)]
		if !ok {
			t.Fatalf("%s: week_start %q", v.ID, v.WeekStart)
		}
		cfg := tsg.DefaultConfig()
		cfg.TimeZone, cfg.BeginningOfWeek = v.Zone, week
		p := tsg.NewParser(v.Granularity)
		if !p.Valid() {
			t.Fatalf("%s: granularity %q", v.ID, v.Granularity)
		}
		got := tsg.NewNocturnal(time.Unix(v.AtUnix, 0), cfg).Floor(p.Offset, p.Unit).Unix()
		if got != want {
			t.Errorf("%s: %s %s at %d: go floors to %d, upstream_go says %d", v.ID, v.Zone, v.Granularity, v.AtUnix, got, want)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no floor vector carries upstream_go")
	}
	t.Logf("%d floor vectors with an upstream_go value checked, %d where upstream differs from SPEC", checked, differ)
}
