-- Run once by the postgres image on an empty data volume: the API's own database, next to Dagster's.
CREATE DATABASE dalgo_api OWNER dalgo;
