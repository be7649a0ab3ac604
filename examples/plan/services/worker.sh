#!/bin/sh
echo "worker: ready"
