module trifle-c/bench/go

go 1.24.0

require (
	github.com/jackc/pgx/v5 v5.8.0
	github.com/redis/go-redis/v9 v9.17.3
	github.com/trifle-io/trifle_stats_go v0.0.0-00010101000000-000000000000
	go.mongodb.org/mongo-driver v1.17.9
	modernc.org/sqlite v1.28.0
)
