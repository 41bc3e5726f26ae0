// The one function of topojson-client the map uses (the package ships no types).
declare module "topojson-client" {
  export function feature(topology: unknown, object: unknown): GeoJSON.FeatureCollection | GeoJSON.Feature;
}
