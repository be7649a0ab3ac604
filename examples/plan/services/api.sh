#!/bin/sh
echo "api: ready"
