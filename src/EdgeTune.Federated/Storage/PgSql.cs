using Npgsql;

namespace EdgeTune.Federated.Storage;

/// <summary>Statement plumbing shared by the PostgreSQL membership table and state store: positional parameters
/// ($1, $2, ...), typed so that nulls carry their type.</summary>
internal static class PgSql
{
    public static NpgsqlParameter P<T>(T value) => new NpgsqlParameter<T> { TypedValue = value };

    public static NpgsqlCommand Command(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, params NpgsqlParameter[] args)
    {
        var cmd = new NpgsqlCommand(sql, c, tx);
        cmd.Parameters.AddRange(args);
        return cmd;
    }

    public static int Exec(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, params NpgsqlParameter[] args)
    {
        using var cmd = Command(c, tx, sql, args);
        return cmd.ExecuteNonQuery();
    }
}
