package interop

import (
	"context"
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
)

// TestUpstreamLayout checks the Go side alone against the storage layout of trifle_stats_go
// (docs/storage-format.md, docs/compatibility.md: keys, identifier columns,
// flat or nested data, value types). It needs the test servers but no trifle-c plugin, so it
// also guards the upstream model (tests/interop/upstreamgo) while a plugin is missing.
func TestUpstreamLayout(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.serverAvailable(t)
			for _, mode := range b.modes {
				t.Run(mode, func(t *testing.T) { upstreamLayout(t, b.openGo(t, mode)) })
			}
		})
	}
}

func upstreamLayout(t *testing.T, s *store) {
	hour := at("2025-01-15T10:00:00Z") // unix 1736935200
	s.g.track(key, w1At, map[string]any{"count": 1, "meta": map[string]any{"duration": 0.5}})
	data := map[string]any{"count": 1.0, "meta.duration": 0.5}
	system := map[string]any{"count": 1.0, "keys.event::logs": 1.0}
	switch s.backend {
	case "sqlite", "postgres", "mysql":
		var atValue any = hour // postgres: TIMESTAMPTZ
		switch s.backend {
		case "sqlite":
			atValue = "2025-01-15T10:00:00Z" // TEXT, RFC 3339 UTC
		case "mysql":
			atValue = "2025-01-15 10:00:00.000000" // DATETIME(6), UTC wall time
		}
		if got := sqlRow(t, s, key, "1h", hour, atValue); !reflect.DeepEqual(got, data) {
			t.Errorf("data row %v, want %v", got, data)
		}
		if got := sqlRow(t, s, "__system__key__", "1h", hour, atValue); !reflect.DeepEqual(got, system) {
			t.Errorf("system row %v, want %v", got, system)
		}
	case "redis", "redis_cluster":
		ctx := context.Background()
		got := s.redis.HGetAll(ctx, s.table+"::event::logs::1h::1736935200").Val()
		if want := map[string]string{"count": "1", "meta.duration": "0.5"}; !reflect.DeepEqual(got, want) {
			t.Errorf("hash %v, want %v", got, want)
		}
		got = s.redis.HGetAll(ctx, s.table+"::__system__key__::1h::1736935200").Val()
		if want := map[string]string{"count": "1", "keys.event::logs": "1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("system hash %v, want %v", got, want)
		}
	case "mongo":
		filter := bson.M{"key": "event::logs::1h::1736935200"}
		switch s.mode {
		case "partial":
			filter = bson.M{"key": "event::logs::1h", "at": hour}
		case "separated":
			filter = bson.M{"key": key, "granularity": "1h", "at": hour}
		}
		var doc bson.M
		if err := s.mongo.FindOne(context.Background(), filter).Decode(&doc); err != nil {
			t.Fatalf("find %v: %v", filter, err)
		}
		// $inc converts every delta to a double and dotted paths nest.
		want := bson.M{"count": 1.0, "meta": bson.M{"duration": 0.5}}
		if got, _ := doc["data"].(bson.M); !reflect.DeepEqual(got, want) {
			t.Errorf("document data %#v, want %#v", doc["data"], want)
		}
	}
	checkSeries(t, "go 1h", s.g.values(key, w1At, w1At, "1h"), one(hour, flat{"count": 1, "meta.duration": 0.5}))
}
