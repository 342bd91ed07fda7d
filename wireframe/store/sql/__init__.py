"""SQL implementation of the store's transitions, shared by the memory and SQLite stores."""
