package interop

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // "mysql" for database/sql, as upstream's MySQL driver uses
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" for database/sql, as upstream's postgres driver uses
	"github.com/redis/go-redis/v9"
	tsg "github.com/trifle-io/trifle_stats_go"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// store is one fresh namespace (SQLite file, PostgreSQL or MySQL table, Redis prefix, Mongo
// collection) opened by both sides.
type store struct {
	backend string
	mode    string
	c       *cli
	g       *goSide
	sqlDB   *sql.DB               // sqlite, postgres, mysql: the Go side's connection (raw checks)
	redis   redis.UniversalClient // redis, redis_cluster: the Go side's client
	mongo   *mongo.Collection     // mongo: the collection of this store
	table   string                // sqlite, postgres, mysql: table; redis, redis_cluster: prefix
	goSetup func() error          // upstream's Setup of the store
}

// backend knows how to open a fresh store for one identifier mode.
type backend struct {
	name  string
	env   string // the server URI variable ("" = no server)
	modes []string
	newGo func(t *testing.T, mode string) *store // the namespace and the Go driver (not set up)
}

var backends = []backend{
	{"sqlite", "", []string{"full", "partial", "separated"}, newSQLite},
	{"postgres", "TRIFLE_TEST_URI_POSTGRES", []string{"full", "partial", "separated"}, newPostgres},
	{"redis", "TRIFLE_TEST_URI_REDIS", []string{"full"}, newRedis},
	{"redis_cluster", "TRIFLE_TEST_URI_REDIS_CLUSTER", []string{"full"}, newRedisCluster},
	{"mongo", "TRIFLE_TEST_URI_MONGO", []string{"full", "partial", "separated"}, newMongo},
	{"mysql", "TRIFLE_TEST_URI_MYSQL", []string{"full", "partial", "separated"}, newMySQL},
}

func backendNamed(name string) backend {
	for _, b := range backends {
		if b.name == name {
			return b
		}
	}
	panic(name)
}

// serverAvailable skips (fails under CI) when the backend's test server is not configured.
func (b backend) serverAvailable(t *testing.T) {
	t.Helper()
	if b.env != "" {
		need(t, os.Getenv(b.env) != "", "%s is not set (scripts/test-servers.sh start DIR; . DIR/env.sh)", b.env)
	}
}

// available also requires trifle-c's plugin for the backend.
func (b backend) available(t *testing.T) {
	t.Helper()
	b.serverAvailable(t)
	needPlugin(t, b.name)
}

// open gives a fresh store opened by both sides. `trifle setup` runs first and upstream's
// Setup second, so upstream works on trifle-c's tables and indexes (its SQLite reads are
// SELECT * and depend on the column order; MongoDB refuses an index that exists under another
// name or with other options).
func (b backend) open(t *testing.T, mode string) *store {
	t.Helper()
	b.available(t)
	s := b.newGo(t, mode)
	s.c.bin = trifleBin(t)
	s.c.must("setup")
	if err := s.goSetup(); err != nil {
		t.Fatalf("upstream %s Setup on trifle-c's schema: %v", b.name, err)
	}
	return s
}

// openGo gives a fresh store set up by the Go side only.
func (b backend) openGo(t *testing.T, mode string) *store {
	t.Helper()
	s := b.newGo(t, mode)
	if err := s.goSetup(); err != nil {
		t.Fatalf("upstream %s Setup: %v", b.name, err)
	}
	return s
}

func goMode(mode string) tsg.JoinedIdentifier {
	switch mode {
	case "partial":
		return tsg.JoinedPartial
	case "separated":
		return tsg.JoinedSeparated
	}
	return tsg.JoinedFull
}

var seq atomic.Int64

// namespace is a name unique to this process and test: interop_<pid>_<n>.
func namespace() string {
	return fmt.Sprintf("interop_%d_%d", os.Getpid(), seq.Add(1))
}

// withParam appends a query parameter to a driver URL.
func withParam(u, name, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + name + "=" + url.QueryEscape(value)
}

func newStore(t *testing.T, backend, mode, driverURL string, drv tsg.Driver) *store {
	return &store{
		backend: backend,
		mode:    mode,
		c:       &cli{t: t, url: driverURL, mode: mode, zone: "UTC"},
		g:       &goSide{t: t, driver: drv, zone: "UTC"},
	}
}

func newSQLite(t *testing.T, mode string) *store {
	path := filepath.Join(t.TempDir(), "stats.db")
	// As upstream's README opens it; one connection so that the pragmas of Setup apply to
	// every statement of the Go side.
	db, err := sql.Open("sqlite", "file:"+path+"?cache=shared&mode=rwc")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	drv := tsg.NewSQLiteDriver(db, "trifle_stats", goMode(mode))
	s := newStore(t, "sqlite", mode, "sqlite:"+path, drv)
	s.sqlDB, s.table, s.goSetup = db, "trifle_stats", drv.Setup
	return s
}

func newPostgres(t *testing.T, mode string) *store {
	uri := os.Getenv("TRIFLE_TEST_URI_POSTGRES")
	db, err := sql.Open("pgx", uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	table := namespace()
	t.Cleanup(func() {
		_, _ = db.Exec("DROP TABLE IF EXISTS " + table)
		_, _ = db.Exec("DROP TABLE IF EXISTS " + table + "_ping")
	})
	drv := tsg.NewPostgresDriver(db, table, goMode(mode))
	s := newStore(t, "postgres", mode, withParam(uri, "table", table), drv)
	s.sqlDB, s.table, s.goSetup = db, table, drv.Setup
	return s
}

func newRedis(t *testing.T, mode string) *store {
	uri := os.Getenv("TRIFLE_TEST_URI_REDIS")
	opt, err := redis.ParseURL(uri)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opt)
	prefix := namespace()
	t.Cleanup(func() {
		_ = delNamespace(context.Background(), client, prefix)
		_ = client.Close()
	})
	return newRedisStore(t, "redis", mode, uri, client, prefix)
}

// delNamespace deletes the keys under prefix that a SCAN of node sees.
func delNamespace(ctx context.Context, node *redis.Client, prefix string) error {
	iter := node.Scan(ctx, 0, prefix+"::*", 1000).Iterator()
	for iter.Next(ctx) {
		node.Del(ctx, iter.Val())
	}
	return iter.Err()
}

// newRedisStore: trifle-c's plugin (named backend) at uri with the prefix on one side,
// upstream's Redis driver over client on the other.
func newRedisStore(t *testing.T, backend, mode, uri string, client redis.UniversalClient, prefix string) *store {
	s := newStore(t, backend, mode, withParam(uri, "prefix", prefix), tsg.NewRedisDriver(client, prefix))
	s.redis, s.table = client, prefix
	s.goSetup = func() error { return nil } // upstream's Redis driver has no Setup
	return s
}

// clusterAddrs gives the nodes of trifle-c's redis_cluster://host:port,host:port/?… URL.
func clusterAddrs(t *testing.T, uri string) []string {
	rest, ok := strings.CutPrefix(uri, "redis_cluster://")
	if !ok {
		t.Fatalf("TRIFLE_TEST_URI_REDIS_CLUSTER: want redis_cluster://host:port,…, got %q", uri)
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	return strings.Split(rest, ",")
}

// newRedisCluster: trifle-c's redis_cluster plugin on one side, upstream's Redis driver over
// go-redis's ClusterClient (a redis.UniversalClient, as upstream takes it) on the other, on the
// three-master cluster of scripts/test-servers.sh.
func newRedisCluster(t *testing.T, mode string) *store {
	uri := os.Getenv("TRIFLE_TEST_URI_REDIS_CLUSTER")
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: clusterAddrs(t, uri)})
	prefix := namespace()
	t.Cleanup(func() {
		ctx := context.Background()
		// a SCAN sees one node: delete the namespace on every master
		_ = client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return delNamespace(ctx, node, prefix)
		})
		_ = client.Close()
	})
	return newRedisStore(t, "redis_cluster", mode, uri, client, prefix)
}

func newMongo(t *testing.T, mode string) *store {
	uri := os.Getenv("TRIFLE_TEST_URI_MONGO")
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	if dbName == "" {
		dbName = "trifle" // trifle-c's default database (SPEC §7.8)
	}
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	name := namespace()
	coll := client.Database(dbName).Collection(name)
	t.Cleanup(func() {
		ctx := context.Background()
		_ = coll.Drop(ctx)
		_ = client.Database(dbName).Collection(name + "_ping").Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	drv := tsg.NewMongoDriver(coll, goMode(mode))
	s := newStore(t, "mongo", mode, withParam(uri, "collection", name), drv)
	s.mongo = coll
	s.goSetup = func() error { return drv.Setup(context.Background()) }
	return s
}

// mysqlDSN turns trifle-c's mysql://user:password@host:port/database into go-sql-driver's DSN,
// with parseTime=true&loc=UTC as upstream's README opens it.
func mysqlDSN(t *testing.T, uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?parseTime=true&loc=UTC", u.User.Username(), pw, u.Host,
		strings.TrimPrefix(u.Path, "/"))
}

func newMySQL(t *testing.T, mode string) *store {
	uri := os.Getenv("TRIFLE_TEST_URI_MYSQL")
	db, err := sql.Open("mysql", mysqlDSN(t, uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	table := namespace()
	t.Cleanup(func() {
		_, _ = db.Exec("DROP TABLE IF EXISTS `" + table + "`, `" + table + "_ping`, `" + table + "_marks`")
	})
	drv := tsg.NewMySQLDriver(db, table, goMode(mode))
	s := newStore(t, "mysql", mode, withParam(uri, "table", table), drv)
	s.sqlDB, s.table, s.goSetup = db, table, drv.Setup
	return s
}
