package interop

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRedisClusterSpread: keys keep upstream's layout on a Redis Cluster, so go-redis's
// ClusterClient finds what trifle-c's redis_cluster plugin wrote, and the reverse. Many keys,
// so their hashes land on every master of the cluster (the test checks that they do: data on
// one node only would prove nothing about slot routing). TestInterop runs the common cases on
// the cluster as well; this one spreads the data.
func TestRedisClusterSpread(t *testing.T) {
	s := backendNamed("redis_cluster").open(t, "full")
	ctx := context.Background()
	hour := at("2025-01-15T10:00:00Z") // unix 1736935200, the 1h bucket of w1At
	const n = 24

	cluster := s.redis.(*redis.ClusterClient)
	// every master of the cluster, by address (ForEachMaster calls back concurrently)
	var mu sync.Mutex
	masters := map[string]bool{}
	if err := cluster.ForEachMaster(ctx, func(_ context.Context, node *redis.Client) error {
		mu.Lock()
		masters[node.Options().Addr] = true
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatalf("cluster masters: %v", err)
	}
	if len(masters) < 3 {
		t.Fatalf("the test cluster has %d masters, want 3 (scripts/test-servers.sh)", len(masters))
	}

	// trifle-c writes, go-redis reads: raw hashes by upstream's key layout, then upstream's Values
	seen := map[string]int{}
	system := map[string]string{"count": strconv.Itoa(n)}
	systemAll := flat{"count": 2 * n}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("spread::c%02d", i)
		s.c.track(k, w1At, map[string]any{"count": i + 1, "lat": map[string]any{"p50": 0.5}})
		system["keys."+k] = "1"
		systemAll["keys."+k] = 1
	}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("spread::c%02d", i)
		hash := s.table + "::" + k + "::1h::1736935200"
		got, err := s.redis.HGetAll(ctx, hash).Result()
		if err != nil {
			t.Fatalf("HGETALL %s: %v", hash, err)
		}
		if want := map[string]string{"count": strconv.Itoa(i + 1), "lat.p50": "0.5"}; !reflect.DeepEqual(got, want) {
			t.Errorf("hash %s: %v, want %v", hash, got, want)
		}
		node, err := cluster.MasterForKey(ctx, hash)
		if err != nil {
			t.Fatalf("master of %s: %v", hash, err)
		}
		seen[node.Options().Addr]++
		checkSeries(t, "go "+k+" 1h", s.g.values(k, w1At, w1At, "1h"), one(hour, flat{"count": float64(i + 1), "lat.p50": 0.5}))
	}
	if len(seen) != len(masters) {
		t.Errorf("the %d data hashes are on %d of the %d masters (%v): the test does not spread them", n, len(seen), len(masters), seen)
	}
	hash := s.table + "::__system__key__::1h::1736935200"
	if got := s.redis.HGetAll(ctx, hash).Val(); !reflect.DeepEqual(got, system) {
		t.Errorf("system hash %s: %v, want %v", hash, got, system)
	}

	// upstream writes through the ClusterClient, trifle-c reads
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("spread::g%02d", i)
		s.g.track(k, w1At, map[string]any{"count": i + 1, "lat": map[string]any{"p50": 0.25}})
		systemAll["keys."+k] = 1
	}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("spread::g%02d", i)
		checkSeries(t, "trifle-c "+k+" 1h", s.c.values(k, w1At, w1At, "1h"), one(hour, flat{"count": float64(i + 1), "lat.p50": 0.25}))
	}
	checkSeries(t, "trifle-c system 1h", s.c.values("__system__key__", w1At, w1At, "1h"),
		one(hour, systemAll))
}
