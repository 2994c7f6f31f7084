package iccmatch;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.config.Setting;
import org.neo4j.io.ByteUnit;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Runs the real Neo4j Community engine (embedded DBMS) with only the Bolt connector on.
 *
 * <pre>java -cp target/classes:target/lib/* iccmatch.Neo4jLocal HOME_DIR [PORT] [HOST]</pre>
 *
 * HOME_DIR holds data/ and logs/. Auth is disabled: any credentials are accepted.
 * Optional HOME_DIR/neo4j.conf is loaded first (for extra settings); the settings below win.
 * Page cache size: -Dneo4jlocal.pagecache=256m (default). Stops cleanly on SIGTERM/SIGINT.
 * Prints "Neo4jLocal READY bolt://HOST:PORT" once the default database is available.
 */
public final class Neo4jLocal {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Neo4jLocal HOME_DIR [PORT] [HOST]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = args.length > 1 ? Integer.parseInt(args[1]) : 7687;
        String host = args.length > 2 ? args[2] : "127.0.0.1";
        long pageCache = ByteUnit.parse(System.getProperty("neo4jlocal.pagecache", "256m"));

        Map<Setting<?>, Object> cfg = new HashMap<>();
        cfg.put(BoltConnector.enabled, true);
        cfg.put(BoltConnector.listen_address, new SocketAddress(host, port));
        cfg.put(BoltConnector.advertised_address, new SocketAddress(host, port));
        cfg.put(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED);
        cfg.put(HttpConnector.enabled, false);
        cfg.put(HttpsConnector.enabled, false);
        cfg.put(GraphDatabaseSettings.auth_enabled, false);
        cfg.put(GraphDatabaseSettings.pagecache_memory, pageCache);
        cfg.put(GraphDatabaseSettings.udc_enabled, false); // no usage-data calls home
        cfg.put(GraphDatabaseSettings.preallocate_logical_logs, false); // else 2 x 256 MiB tx logs up front
        // Bolt's netty loops otherwise idle 2 x 5 s on shutdown, after the databases are closed.
        cfg.put(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0);

        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home)
                .setUserLogProvider(new Log4jLogProvider(System.out));
        Path conf = home.resolve("neo4j.conf");
        if (Files.isRegularFile(conf)) {
            builder.loadPropertiesFromFile(conf);
        }
        DatabaseManagementService dbms = builder.setConfig(cfg).build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("Neo4jLocal stopping");
            try {
                dbms.shutdown();
            } finally {
                System.out.println("Neo4jLocal stopped");
                System.out.flush();
                stopped.countDown();
            }
        }, "neo4j-local-shutdown"));

        String dbName = GraphDatabaseSettings.DEFAULT_DATABASE_NAME;
        if (!dbms.database(dbName).isAvailable(TimeUnit.MINUTES.toMillis(5))) {
            System.err.println("Neo4jLocal FAILED: database '" + dbName + "' not available");
            System.exit(1);
        }
        System.out.println("Neo4jLocal READY bolt://" + SocketAddress.format(host, port)
                + " home=" + home + " neo4j=" + org.neo4j.kernel.internal.Version.getNeo4jVersion());
        System.out.flush();
        stopped.await();
    }
}
