package triflestats

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/redis/go-redis/v9"
)

// RedisDriver reproduces upstream's Redis driver (reference §6.4): one hash per bucket at
// prefix::key::granularity::unix, one command per field and no transaction. An integral delta
// uses HINCRBY, a fractional one HINCRBYFLOAT, so an integral increment of a field that holds a
// fraction fails with "ERR hash value is not an integer".
type RedisDriver struct {
	incSet         // Inc and Set, over write
	Client         redis.UniversalClient
	Prefix         string
	Separator      string
	SystemTracking bool
}

// NewRedisDriver mirrors upstream (empty prefix → "trfl").
func NewRedisDriver(client redis.UniversalClient, prefix string) *RedisDriver {
	if prefix == "" {
		prefix = "trfl"
	}
	d := &RedisDriver{Client: client, Prefix: prefix, Separator: "::", SystemTracking: true}
	d.incSet = incSet{d.write}
	return d
}

// Description is RedisDriver(J).
func (d *RedisDriver) Description() string { return "RedisDriver(J)" }

func (d *RedisDriver) hash(k Key) string {
	k.Prefix = d.Prefix
	return k.Join(d.Separator)
}

func sortedFields(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (d *RedisDriver) increment(ctx context.Context, hash string, packed map[string]any) error {
	for _, f := range sortedFields(packed) {
		delta, ok := toFloat(packed[f])
		if !ok {
			return fmt.Errorf("increment requires numeric value for key %q", f)
		}
		var err error
		if math.Mod(delta, 1) == 0 {
			err = d.Client.HIncrBy(ctx, hash, f, int64(delta)).Err()
		} else {
			err = d.Client.HIncrByFloat(ctx, hash, f, delta).Err()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// write serves Inc (set false), which increments the fields of every bucket, then the system
// records, and Set (set true), which writes the fields with one HSET per bucket; the system record
// is still incremented.
func (d *RedisDriver) write(keys []Key, values map[string]any, set bool) error {
	packed, err := packWrite(keys, values, d.Client != nil, "redis driver requires Client")
	if err != nil || len(packed) == 0 {
		return err
	}
	ctx := context.Background()
	return eachBucket(keys, packed, set, d.SystemTracking, func(k Key, p map[string]any, s bool) error {
		if !s {
			return d.increment(ctx, d.hash(k), p)
		}
		args := make([]any, 0, 2*len(p))
		for _, f := range sortedFields(p) {
			args = append(args, f, p[f])
		}
		return d.Client.HSet(ctx, d.hash(k), args...).Err()
	})
}

// Get runs HGETALL per bucket; numeric-looking strings become float64, then Unpack.
func (d *RedisDriver) Get(keys []Key) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(keys))
	ctx := context.Background()
	for _, k := range keys {
		fields, err := d.Client.HGetAll(ctx, d.hash(k)).Result()
		if err != nil {
			return nil, err
		}
		packed := make(map[string]any, len(fields))
		for f, v := range fields {
			if n, ok := toFloat(v); ok {
				packed[f] = n
			} else {
				packed[f] = v
			}
		}
		out = append(out, Unpack(packed))
	}
	return out, nil
}
